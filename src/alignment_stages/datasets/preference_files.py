"""`raw_preferences`: every preference file under a folder, read lazily and never written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

DEFAULT_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


class PreferenceFilesDataset(AbstractDataset[None, dict[str, Callable[[], bytes]]]):
    """Maps each file's path (relative to `path`) to a function returning its bytes.

    Files are read one at a time by the curation step, so a folder larger than memory still works.
    Hidden files (`.gitkeep`) are skipped. Any fsspec URL (s3://, gs://) works as `path`.
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
    ):
        protocol, root = get_protocol_and_path(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._root = root.rstrip("/")
        self._path = path
        self._suffixes = tuple(s.lower() for s in suffixes)
        self.metadata = metadata

    def _relative_files(self) -> list[str]:
        if not self._fs.isdir(self._root):
            return []
        names = []
        for full in self._fs.find(self._root):
            relative = PurePosixPath(full).relative_to(PurePosixPath(self._root).as_posix())
            if not any(part.startswith(".") for part in relative.parts):
                names.append(relative.as_posix())
        return sorted(names)

    def load(self) -> dict[str, Callable[[], bytes]]:
        names = self._relative_files()
        if not any(PurePosixPath(n).suffix.lower() in self._suffixes for n in names):
            raise DatasetError(
                f"No preference files found in '{self._path}'. Put your preference data there as "
                f"{', '.join(self._suffixes)} files (HH-RLHF, UltraFeedback, PKU-SafeRLHF, SHP or "
                "prompt/chosen/rejected), or write the demo data with "
                "`python -m alignment_stages.demo`."
            )

        def reader(name: str) -> Callable[[], bytes]:
            return lambda: self._fs.cat_file(f"{self._root}/{name}")

        return {name: reader(name) for name in names}

    def save(self, data: None) -> None:
        raise DatasetError("raw_preferences is read-only: raw data is never modified.")

    def _exists(self) -> bool:
        return bool(self._relative_files())

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "suffixes": self._suffixes}
