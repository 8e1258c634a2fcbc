"""`raw_preferences`: every preference file under a folder, read lazily and never written."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

logger = logging.getLogger(__name__)

DEFAULT_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class PreferenceFiles(dict):
    """`{relative name: function returning the bytes}`, plus `outside`: the names that are
    links to files outside the raw folder, with the file each one reaches. Curation reads
    those only when `data_curation.follow_links_outside_raw` allows it."""

    outside: dict[str, str]

    def __init__(self, loaders: dict[str, Callable[[], bytes]], outside: dict[str, str]):
        super().__init__(loaders)
        self.outside = outside


def _local_files(root: Path) -> tuple[list[str], dict[str, str]]:
    """Files under `root` by relative name (hidden entries skipped), following links to
    folders as well as to files; and, of those names, the ones whose real file is outside.

    A link to something inside `root` is skipped: that file is listed under its own name, and
    reading it twice would only make duplicates. A link that leads back into one of its own
    parent folders is not followed again.
    """
    real_root = root.resolve()
    names: list[str] = []
    outside: dict[str, str] = {}

    def walk(folder: Path, relative: PurePosixPath, parents: frozenset[Path]) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            path, name = Path(entry.path), relative / entry.name
            real = path.resolve()
            if entry.is_symlink() and real.is_relative_to(real_root) and path != real:
                if not any(part.startswith(".") for part in real.relative_to(real_root).parts):
                    logger.info("Skipping %s, a link to %s (read under its own name)", name, real)
                    continue
            if entry.is_dir():  # follows a link to a folder, once per chain of parents
                if real not in parents:
                    walk(path, name, parents | {real})
                continue
            names.append(name.as_posix())
            if not real.is_relative_to(real_root):
                outside[name.as_posix()] = str(real)

    walk(root, PurePosixPath(), frozenset({real_root}))
    return names, outside


class PreferenceFilesDataset(AbstractDataset[None, PreferenceFiles]):
    """Maps each file's path (relative to `path`) to a function returning its bytes.

    Files are read one at a time by the curation step, so a folder larger than memory still works.
    Hidden files (`.gitkeep`) are skipped. Links are listed by where they sit, and a link that
    leads outside the folder is marked (`PreferenceFiles.outside`) for curation to refuse. Any fsspec URL (s3://, gs://) works as `path`.
    Saving is refused: raw data is never modified.

    Example catalog entry::

        raw_preferences:
          type: alignment_stages.datasets.PreferenceFilesDataset
          path: data/01_raw/preferences
    """

    def __init__(
        self,
        path: str,
        suffixes: tuple[str, ...] | list[str] = DEFAULT_SUFFIXES,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        allow_empty: bool = False,
    ):
        protocol, root = get_protocol_and_path(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._local = protocol == "file"  # links exist on local disks, not on object stores
        self._root = root.rstrip("/")
        self._path = path
        self._suffixes = tuple(s.lower() for s in suffixes)
        self.metadata = metadata
        # True where the published sets are the data (conf/smollm2): the folder may be empty.
        self._allow_empty = allow_empty

    def _relative_files(self) -> tuple[list[str], dict[str, str]]:
        if not self._fs.isdir(self._root):
            return [], {}
        if self._local:
            return _local_files(Path(self._root))
        names = []
        for full in self._fs.find(self._root):
            relative = PurePosixPath(full).relative_to(PurePosixPath(self._root).as_posix())
            if not any(part.startswith(".") for part in relative.parts):
                names.append(relative.as_posix())
        return sorted(names), {}

    def load(self) -> PreferenceFiles:
        names, outside = self._relative_files()
        if not self._allow_empty and not any(
            PurePosixPath(n).suffix.lower() in self._suffixes for n in names
        ):
            raise DatasetError(
                f"No preference files found in '{self._path}'. Put your preference data there as "
                f"{', '.join(self._suffixes)} files (HH-RLHF, UltraFeedback, PKU-SafeRLHF, SHP or "
                "prompt/chosen/rejected), or write the demo data with "
                "`python -m alignment_stages.demo`."
            )

        def reader(name: str) -> Callable[[], bytes]:
            return lambda: self._fs.cat_file(f"{self._root}/{name}")

        return PreferenceFiles({name: reader(name) for name in names}, outside)

    def save(self, data: None) -> None:
        raise DatasetError("raw_preferences is read-only: raw data is never modified.")

    def _exists(self) -> bool:
        return bool(self._relative_files()[0])

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "suffixes": self._suffixes}
