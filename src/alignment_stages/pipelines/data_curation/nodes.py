"""Thin adapters from the catalog to `alignment_stages.curation`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pandas as pd

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import check_bad_fraction
from alignment_stages.curation.published import curate_all
from alignment_stages.curation.splits import (
    add_published,
    check_eval_disjoint,
    check_split_sizes,
    split_by_prompt_group,
)

logger = logging.getLogger(__name__)


def curate_preferences(
    raw_preferences: dict[str, Callable[[], bytes]], params: DataCurationParams
) -> dict[str, Any]:
    """Every record of the raw folder and of the published sets becomes a candidate pair, a
    published prompt or answer, a quarantined record or an excluded one; the report counts all."""
    outside = getattr(raw_preferences, "outside", {})  # PreferenceFiles: links out of the folder
    result, published = curate_all(raw_preferences, params, outside)
    totals = result.curation_report["totals"]
    logger.info(
        "curation/read=%d curation/accepted=%d curation/quarantined=%s curation/published=%s",
        totals["read"],
        totals["accepted"],
        totals["quarantined"],
        result.curation_report["published_totals"],
    )
    return {
        "candidate_pairs": result.curated_pairs,
        "curated_published": published.records,
        "labelled_answers": published.labelled_answers,
        "quarantined_records": result.quarantined_records,
        "curation_report": result.curation_report,
    }


def enforce_max_bad_fraction(
    candidate_pairs: pd.DataFrame, curation_report: dict[str, Any], params: DataCurationParams
) -> pd.DataFrame:
    """A separate node, so the quarantine and report are saved before a failing run stops."""
    check_bad_fraction(curation_report, params.max_bad_fraction)
    return candidate_pairs


def split_curated_pairs(
    curated_pairs: pd.DataFrame, curated_published: pd.DataFrame, params: DataCurationParams
) -> dict[str, Any]:
    splits = add_published(split_by_prompt_group(curated_pairs, params.splits, params.seed),
                           curated_published)  # fmt: skip
    sizes = {name: len(frame) for name, frame in vars(splits).items()}
    logger.info("curation/split_sizes=%s", sizes)
    check_eval_disjoint(splits)
    n_prompts = curated_pairs["prompt_text"].nunique() + curated_published["prompt_text"].nunique()
    check_split_sizes(splits, params.min_split_rows, params.splits, n_prompts)
    return vars(splits)
