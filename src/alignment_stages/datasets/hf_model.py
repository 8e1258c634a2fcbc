"""`HFModelDataset`: a versioned catalog entry for a `save_pretrained` model directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version
from kedro_datasets._typing import JSONPreview

from alignment_stages.models.artifacts import (
    ModelArtifact,
    ModelKind,
    is_complete,
    load_artifact,
    save_artifact,
)


class HFModelDataset(AbstractVersionedDataset[ModelArtifact, ModelArtifact]):
    """A model and its tokenizer (a LoRA adapter with its base) as one directory.

    - Saves are atomic (temporary sibling, completion marker, rename); a directory without the
      marker is never listed as a version, so a crashed save never becomes "latest".
    - Loads take safetensors only, with `trust_remote_code=False` unless set here.
    - The object saved in this run is handed to later nodes as is, not copied or re-read from
      disk, unless a different version is pinned with `--load-versions`.

    Example catalog entry::

        base_policy:
          type: alignment_stages.datasets.HFModelDataset
          filepath: data/06_models/base_policy
          model_kind: causal_lm
          versioned: true
    """

    def __init__(
        self,
        filepath: str,
        model_kind: ModelKind = "causal_lm",
        trust_remote_code: bool = False,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(
            filepath=PurePosixPath(filepath),
            version=version,
            exists_function=lambda path: is_complete(Path(path)),
        )
        self._model_kind = model_kind
        self._trust_remote_code = trust_remote_code
        self._saved: tuple[str, ModelArtifact] | None = None  # (path, object) saved in this process
        self.metadata = metadata

    def load(self) -> ModelArtifact:
        path = str(self._get_load_path())
        if self._saved is not None and self._saved[0] == path:
            return self._saved[1]
        try:
            return load_artifact(Path(path), self._model_kind, self._trust_remote_code)
        except (FileNotFoundError, ValueError) as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: ModelArtifact) -> None:
        if not isinstance(data, ModelArtifact):
            raise DatasetError(f"expected a ModelArtifact, got {type(data).__name__}")
        path = str(self._get_save_path())
        save_artifact(data, Path(path))
        self._saved = (path, data)
        self._clear_version_cache()

    def _exists(self) -> bool:
        try:
            return is_complete(Path(self._get_load_path()))
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "model_kind": self._model_kind,
            "version": self._version,
        }

    def preview(self) -> JSONPreview:
        """kedro-viz preview: the artifact summary (architecture, parameters, LoRA or not),
        read from `artifact.json` without loading the weights."""
        return JSONPreview((Path(self._get_load_path()) / "artifact.json").read_text())
