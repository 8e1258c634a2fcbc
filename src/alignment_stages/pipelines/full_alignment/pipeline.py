"""The stages in order. A stage is listed here once its package exists."""

from kedro.pipeline import Pipeline

from alignment_stages.pipelines import data_curation

STAGES = (data_curation,)


def create_pipeline(**kwargs) -> Pipeline:
    return sum((stage.create_pipeline() for stage in STAGES), Pipeline([]))
