"""Wiring only; see nodes.py."""

from kedro.pipeline import Node, Pipeline

from alignment_stages.curation.config import SPLIT_NAMES
from alignment_stages.pipelines.data_curation.nodes import (
    curate_preferences,
    enforce_max_bad_fraction,
    split_curated_pairs,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                curate_preferences,
                inputs=["raw_preferences", "params:data_curation"],
                outputs={
                    "candidate_pairs": "candidate_pairs",
                    "curated_published": "curated_published",
                    "labelled_answers": "labelled_answers",
                    "quarantined_records": "quarantined_records",
                    "curation_report": "curation_report",
                },
                name="curate_preferences",
            ),
            Node(
                enforce_max_bad_fraction,
                inputs=["candidate_pairs", "curation_report", "params:data_curation"],
                outputs="curated_pairs",
                name="enforce_max_bad_fraction",
            ),
            Node(
                split_curated_pairs,
                inputs=["curated_pairs", "curated_published", "params:data_curation"],
                outputs={name: name for name in SPLIT_NAMES},
                name="split_curated_pairs",
            ),
        ]
    )
