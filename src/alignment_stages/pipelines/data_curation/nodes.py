"""Thin adapters from the catalog to `alignment_stages.curation`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import check_bad_fraction, curate_files
from alignment_stages.curation.splits import check_split_sizes, split_by_prompt_group

logger = logging.getLogger(__name__)


def curate_preferences(
    raw_preferences: dict[str, Callable[[], bytes]], params: DataCurationParams
) -> dict[str, Any]:
    """Every record becomes a candidate pair or a quarantined record; the report counts both."""
    outside = getattr(raw_preferences, "outside", {})  # PreferenceFiles: links out of the folder
    result = curate_files(raw_preferences, params, outside)
    totals = result.curation_report["totals"]
    logger.info(
        "curation/read=%d curation/accepted=%d curation/quarantined=%s",
        totals["read"],
        totals["accepted"],
        totals["quarantined"],
    )
    return {
        "candidate_pairs": result.curated_pairs,
        "quarantined_records": result.quarantined_records,
        "curation_report": result.curation_report,
    }


def enforce_max_bad_fraction(
    candidate_pairs: pd.DataFrame, curation_report: dict[str, Any], params: DataCurationParams
) -> pd.DataFrame:
    """A separate node, so the quarantine and report are saved before a failing run stops."""
    check_bad_fraction(curation_report, params.max_bad_fraction)
    return candidate_pairs


def split_curated_pairs(curated_pairs: pd.DataFrame, params: DataCurationParams) -> dict[str, Any]:
    splits = split_by_prompt_group(curated_pairs, params.splits, params.seed)
    sizes = {name: len(frame) for name, frame in vars(splits).items()}
    logger.info("curation/split_sizes=%s", sizes)
    n_prompts = curated_pairs["prompt_text"].nunique()
    check_split_sizes(splits, params.min_split_rows, params.splits, n_prompts)
    return vars(splits)
