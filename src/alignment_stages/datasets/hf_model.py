"""`HFModelDataset`: a versioned catalog entry for a `save_pretrained` model directory."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_protocol_and_path
from kedro_datasets._typing import JSONPreview

from alignment_stages.models.artifacts import (
    ModelArtifact,
    ModelKind,
    is_complete,
    load_artifact,
    save_artifact,
    save_artifacts,
)


def _is_complete_version(path: str) -> bool:
    return is_complete(Path(path))


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
        protocol, _ = get_protocol_and_path(filepath)
        if protocol != "file":
            # save_pretrained/from_pretrained need a local directory; a URL would otherwise be
            # read as a relative local path ("s3:/bucket/...") and written there silently.
            raise DatasetError(
                f"{type(self).__name__} saves and loads local directories only, not "
                f"{protocol}:// URLs ({filepath!r}). Put model datasets on a local or mounted "
                "filesystem shared by every worker (see docs/deployment.md)."
            )
        super().__init__(
            filepath=PurePosixPath(filepath),
            version=version,
            exists_function=_is_complete_version,  # a module function: picklable for ParallelRunner
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


class ArtifactCollection(dict):
    """`{name: function returning the artifact}`, plus the dataset version it was loaded from."""

    version: str | None = None


class HFModelCollectionDataset(HFModelDataset):
    """Several named artifacts (e.g. one policy per PPO round) saved as one atomic version.

    Saves `{name: ModelArtifact}` into `<version>/<basename>/<name>/`, all inside one staging
    directory renamed at the end. Loads lazily: `{name: function returning the artifact}`, so
    selecting one round does not read the others.
    """

    def load(self) -> ArtifactCollection:
        path = Path(self._get_load_path())
        if self._saved is not None and self._saved[0] == str(path):
            loaders = {name: (lambda a=artifact: a) for name, artifact in self._saved[1].items()}
        elif not is_complete(path):
            raise DatasetError(f"{path} has no completion marker: its save did not finish")
        else:
            kind, remote = self._model_kind, self._trust_remote_code
            loaders = {
                child.name: (lambda c=child: load_artifact(c, kind, remote))
                for child in sorted(path.iterdir())
                if child.is_dir()
            }
        collection = ArtifactCollection(loaders)
        collection.version = self.resolve_load_version()
        return collection

    def save(self, data: dict[str, ModelArtifact]) -> None:
        if not isinstance(data, dict) or not all(
            isinstance(a, ModelArtifact) for a in data.values()
        ):
            raise DatasetError("expected a dict of name -> ModelArtifact")
        path = Path(self._get_save_path())
        save_artifacts(data, path)
        self._saved = (str(path), data)
        self._clear_version_cache()

    def preview(self) -> JSONPreview:
        import json

        path = Path(self._get_load_path())
        summaries = {
            c.name: json.loads((c / "artifact.json").read_text())
            for c in sorted(path.iterdir())
            if c.is_dir()
        }
        return JSONPreview(json.dumps(summaries))
