"""`data_curation`: raw preference files → curated pairs, quarantine, report and splits."""

from alignment_stages.pipelines.data_curation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
