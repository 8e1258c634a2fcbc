"""`HFModelDataset`: a versioned catalog entry for a `save_pretrained` model directory, on the
local disk or any fsspec filesystem (`s3://`, `gs://`, `abfs://`, ...)."""

from __future__ import annotations

import atexit
import functools
import json
import logging
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_protocol_and_path
from kedro_datasets._typing import JSONPreview

from alignment_stages.models.artifacts import (
    COMPLETION_MARKER,
    ModelArtifact,
    ModelKind,
    is_complete,
    load_artifact,
    save_artifact,
    save_artifacts,
)
from alignment_stages.staging import remove_abandoned_staging

logger = logging.getLogger(__name__)


def _filesystem(protocol: str, storage_options: dict[str, Any]) -> fsspec.AbstractFileSystem:
    return fsspec.filesystem(protocol, **storage_options)


# Module functions (with functools.partial) rather than closures: ParallelRunner pickles datasets.
def _is_complete_version(path: str, protocol: str = "file", storage_options=None) -> bool:
    if protocol == "file":
        return is_complete(Path(path))
    return _filesystem(protocol, storage_options or {}).exists(f"{path}/{COMPLETION_MARKER}")


def _glob(pattern: str, protocol: str, storage_options: dict[str, Any]) -> list[str]:
    return _filesystem(protocol, storage_options).glob(pattern)


def upload_artifact_directory(local: Path, remote: str, fs: fsspec.AbstractFileSystem) -> None:
    """Copy a finished local artifact to `remote`, its completion marker last.

    Object stores have no atomic rename, so the marker is the commit: until it lands, loaders
    and "latest" do not see the version. A failed upload removes what it wrote.
    """
    markers = sorted(local.rglob(COMPLETION_MARKER), key=lambda p: len(p.parts), reverse=True)
    try:
        for file in sorted(p for p in local.rglob("*") if p.is_file() and p not in markers):
            fs.put_file(str(file), f"{remote}/{file.relative_to(local).as_posix()}")
        for marker in markers:  # inner artifacts first, the version's own marker at the very end
            fs.put_file(str(marker), f"{remote}/{marker.relative_to(local).as_posix()}")
    except BaseException:
        if fs.exists(remote):
            fs.rm(remote, recursive=True)
        raise


_DOWNLOADS: list[str] = []


@atexit.register
def _remove_downloads() -> None:
    for directory in _DOWNLOADS:
        shutil.rmtree(directory, ignore_errors=True)


def download_directory(remote: str, fs: fsspec.AbstractFileSystem) -> Path:
    """A local copy of `remote`, kept until the process exits (loaded weights may map it)."""
    local = Path(tempfile.mkdtemp(prefix="alignment_stages_model_"))
    _DOWNLOADS.append(str(local))
    root = PurePosixPath(fs._strip_protocol(remote))  # as `find` spells it (memory:// adds "/")
    for path in fs.find(remote):
        target = local / PurePosixPath(path).relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(target))
    return local


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
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        protocol, _ = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._storage_options = {**(credentials or {}), **(fs_args or {})}
        # `_fs` and a protocol-free `_filepath`, as kedro-datasets keep them (the filesystem's own
        # spelling of the path: "bucket/key" for s3://).
        self._fs = _filesystem(protocol, self._storage_options)
        path = self._fs._strip_protocol(filepath)
        remote = {} if protocol == "file" else {"glob_function": functools.partial(
            _glob, protocol=protocol, storage_options=self._storage_options)}  # fmt: skip
        super().__init__(
            filepath=PurePosixPath(path if protocol != "file" else filepath),
            version=version,
            exists_function=functools.partial(
                _is_complete_version, protocol=protocol, storage_options=self._storage_options
            ),
            **remote,
        )
        self._model_kind = model_kind
        self._trust_remote_code = trust_remote_code
        self._saved: tuple[str, ModelArtifact] | None = None  # (path, object) saved in this process
        self.metadata = metadata

    @property
    def _is_local(self) -> bool:
        return self._protocol == "file"

    def _local_copy(self, path: str) -> Path:
        """The version directory on the local disk: itself, or a download of it."""
        if self._is_local:
            return Path(path)
        if not self._exists_function(path):
            raise DatasetError(
                f"{self._protocol}://{path} has no {COMPLETION_MARKER} marker: its save did not "
                "finish. Use another version."
            )
        return download_directory(path, self._fs)

    def _write(self, path: str, write) -> None:
        """`write(local_target)` saves atomically; remote targets are uploaded after it.

        Local saves first remove the staging folders that killed saves of this dataset left
        (`<filepath>/<version>/.<name>.tmp-*`); remote saves stage in a temporary folder."""
        if self._is_local:
            versioned = bool(self._version)
            folder = str(self._filepath if versioned else self._filepath.parent)
            remove_abandoned_staging(self._fs, folder, self._filepath.name, versioned)
            write(Path(path))
            return
        with tempfile.TemporaryDirectory(prefix="alignment_stages_upload_") as staging:
            write(Path(staging) / "artifact")
            upload_artifact_directory(Path(staging) / "artifact", path, self._fs)

    def _fetch_latest_load_version(self) -> str:
        """The newest complete version, as Kedro finds it; the newer version folders it passes
        over (no completion marker) are named in a warning, beside the one loaded."""
        if self._cached_load_version is not None:
            return self._cached_load_version
        latest = super()._fetch_latest_load_version()
        newer = sorted(
            (name for name in (PurePosixPath(p).name for p in self._fs.glob(f"{self._filepath}/*"))
             if not name.startswith(".") and name > latest),
            reverse=True,
        )  # fmt: skip
        if newer:
            logger.warning(
                "%s: skipping version %s, which has no %s marker (its save did not finish, or "
                "is still running); loading %s, the newest complete version. Pin one with "
                "--load-versions to choose.",
                self._filepath, ", ".join(newer), COMPLETION_MARKER, latest,
            )  # fmt: skip
        return latest

    def load(self) -> ModelArtifact:
        path = str(self._get_load_path())
        if self._saved is not None and self._saved[0] == path:
            return self._saved[1]
        try:
            local = self._local_copy(path)
            return load_artifact(local, self._model_kind, self._trust_remote_code)
        except (FileNotFoundError, ValueError) as exc:
            raise DatasetError(str(exc)) from exc

    def save(self, data: ModelArtifact) -> None:
        if not isinstance(data, ModelArtifact):
            raise DatasetError(f"expected a ModelArtifact, got {type(data).__name__}")
        path = str(self._get_save_path())
        self._write(path, lambda target: save_artifact(data, target))
        self._saved = (path, data)
        self._clear_version_cache()

    def _exists(self) -> bool:
        try:
            return self._exists_function(str(self._get_load_path()))
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "protocol": self._protocol,
            "model_kind": self._model_kind,
            "version": self._version,
        }

    def _read_text(self, path: str) -> str:
        with self._fs.open(path, "r") as handle:
            return handle.read()

    def preview(self) -> JSONPreview:
        """kedro-viz preview: the artifact summary (architecture, parameters, LoRA or not),
        read from `artifact.json` without loading the weights."""
        return JSONPreview(self._read_text(f"{self._get_load_path()}/artifact.json"))


class ArtifactCollection(dict):
    """`{name: function returning the artifact}`, plus the dataset version it was loaded from
    and whether that version was pinned (`--load-versions`) rather than "latest"."""

    version: str | None = None
    pinned: bool = False


class HFModelCollectionDataset(HFModelDataset):
    """Several named artifacts (e.g. one policy per PPO round) saved as one atomic version.

    Saves `{name: ModelArtifact}` into `<version>/<basename>/<name>/`, all inside one staging
    directory renamed at the end. Loads lazily: `{name: function returning the artifact}`, so
    selecting one round does not read the others.
    """

    def load(self) -> ArtifactCollection:
        path = str(self._get_load_path())
        if self._saved is not None and self._saved[0] == path:
            loaders = {name: (lambda a=artifact: a) for name, artifact in self._saved[1].items()}
        else:
            local = self._local_copy(path)  # a remote version is checked before its download
            if not is_complete(local):
                raise DatasetError(f"{path} has no completion marker: its save did not finish")
            kind, remote = self._model_kind, self._trust_remote_code
            loaders = {
                child.name: (lambda c=child: load_artifact(c, kind, remote))
                for child in sorted(local.iterdir())
                if child.is_dir()
            }
        collection = ArtifactCollection(loaders)
        collection.version = self.resolve_load_version()
        collection.pinned = bool(self._version and self._version.load)
        return collection

    def save(self, data: dict[str, ModelArtifact]) -> None:
        if not isinstance(data, dict) or not all(
            isinstance(a, ModelArtifact) for a in data.values()
        ):
            raise DatasetError("expected a dict of name -> ModelArtifact")
        path = str(self._get_save_path())
        self._write(path, lambda target: save_artifacts(data, target))
        self._saved = (path, data)
        self._clear_version_cache()

    def preview(self) -> JSONPreview:
        path = str(self._get_load_path())
        summaries = {
            PurePosixPath(child).name: json.loads(self._read_text(f"{child}/artifact.json"))
            for child in sorted(self._fs.ls(path, detail=False))
            if self._fs.isdir(child)
        }
        return JSONPreview(json.dumps(summaries))
