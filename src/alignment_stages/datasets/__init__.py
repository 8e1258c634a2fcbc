"""Project-owned Kedro datasets. They are the only modules here, besides `pipelines/`, that know
about Kedro."""

from alignment_stages.datasets.atomic_files import (
    JSONDataset,
    ParquetDataset,
    PlotlyJSONDataset,
    TextDataset,
)
from alignment_stages.datasets.checkpoints import RoundCheckpointsDataset
from alignment_stages.datasets.hf_model import HFModelCollectionDataset, HFModelDataset
from alignment_stages.datasets.preference_files import PreferenceFilesDataset

__all__ = [
    "HFModelCollectionDataset",
    "HFModelDataset",
    "JSONDataset",
    "ParquetDataset",
    "PlotlyJSONDataset",
    "PreferenceFilesDataset",
    "RoundCheckpointsDataset",
    "TextDataset",
]
