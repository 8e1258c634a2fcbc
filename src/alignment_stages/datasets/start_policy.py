"""The start policy of `stage_probe`: the catalog model, round or path `stage_probe.start` names.

Kedro wires node inputs statically, so the pipeline reads one name, `probe_start_policy`, and
`alignment_stages.session.ResolveProbeStart` registers it before the run as the dataset the
parameter names. A catalog model is the catalog's own dataset object, so `--load-versions`
pins it exactly as it pins that dataset anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from alignment_stages.datasets.hf_model import HFModelCollectionDataset, HFModelDataset
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.probe.start import (
    StartPolicyError,
    check_round,
    check_start_path,
    parse_start,
)

PROBE_START = "probe_start_policy"


class RoundPolicyDataset(AbstractDataset[None, ModelArtifact]):
    """One round of a `HFModelCollectionDataset` (at the collection's pinned or latest version),
    read-only."""

    def __init__(self, collection: HFModelCollectionDataset, round_name: str):
        self._collection, self._round = collection, round_name

    def check(self) -> None:
        rounds = self._collection.load()
        check_round(self._round, sorted(rounds), rounds.version)

    def load(self) -> ModelArtifact:
        rounds = self._collection.load()
        check_round(self._round, sorted(rounds), rounds.version)
        return rounds[self._round]()

    def save(self, data: None) -> None:
        raise DatasetError(f"{PROBE_START} is read-only: it is the probe's start policy")

    def _describe(self) -> dict[str, Any]:
        return {"collection": self._collection._describe(), "round": self._round}


def start_dataset(start: str, catalog: Any, project_path: Path) -> AbstractDataset:
    """The dataset `start` names; raises `StartPolicyError` before any work when it names
    nothing that exists."""
    spec = parse_start(start)
    if spec.kind == "path":
        return HFModelDataset(filepath=str(check_start_path(spec.name, project_path)))
    dataset = catalog.get(spec.name)
    if dataset is None:
        raise StartPolicyError(f"stage_probe.start={start!r}: the catalog has no {spec.name}")
    try:
        exists = dataset.exists()
    except DatasetError:
        exists = False
    if not exists:
        raise StartPolicyError(
            f"stage_probe.start={start!r}: {spec.name} has no saved version (with any "
            "--load-versions pin applied). Run the pipeline that writes it first."
        )
    if spec.kind == "round":
        round_dataset = RoundPolicyDataset(dataset, spec.round)
        round_dataset.check()
        return round_dataset
    return dataset
