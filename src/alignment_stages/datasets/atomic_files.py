"""kedro-datasets' file datasets, saved atomically: the file is written to a hidden staging
sibling and renamed into place once complete.

kedro-datasets write straight to `<filepath>/<version>/<name>`. A process killed mid-write
leaves a torn file there, and since "latest" is the newest version folder holding `<name>`,
the next run loads it (`Parquet magic bytes not found in footer`) or mixes two runs. Here the
torn bytes stay in `.<name>.tmp-*`, which no load matches; the next save of the dataset removes
it. Local renames are atomic; on object stores the move is a copy, and the staging object
never matches a load either.

Catalog entries use these exactly as the kedro-datasets classes they extend::

    ppo_history:
      type: alignment_stages.datasets.ParquetDataset
      filepath: data/07_model_output/ppo_history.parquet
      versioned: true
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kedro.io.core import get_filepath_str
from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.plotly import JSONDataset as _PlotlyJSONDataset
from kedro_datasets.text import TextDataset as _TextDataset

from alignment_stages.staging import remove_abandoned_staging, staging_name


class _AtomicSave:
    """Mixed in before a kedro-datasets class whose `save` writes to `self._get_save_path()`."""

    _staging: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        return self._staging or super()._get_save_path()

    def save(self, data: Any) -> None:
        # Kedro wraps this `save` in its versioning and error handling; the parent's plain
        # writer is `__wrapped__` under the same wrappers.
        write = super().save.__wrapped__
        target = super()._get_save_path()
        folder = self._filepath.parent if not self._version else self._filepath
        remove_abandoned_staging(
            self._fs,
            get_filepath_str(folder, self._protocol),
            self._filepath.name,
            versioned=bool(self._version),
        )
        self._staging = target.parent / staging_name(target.name)
        staging = get_filepath_str(self._staging, self._protocol)
        try:
            write(self, data)
            self._fs.mv(staging, get_filepath_str(target, self._protocol))
        except BaseException:
            if self._fs.exists(staging):
                self._fs.rm(staging)
            raise
        finally:
            self._staging = None
        self._invalidate_cache()


class ParquetDataset(_AtomicSave, _ParquetDataset):
    """`pandas.ParquetDataset`, saved atomically."""


class JSONDataset(_AtomicSave, _JSONDataset):
    """`json.JSONDataset`, saved atomically."""


class TextDataset(_AtomicSave, _TextDataset):
    """`text.TextDataset` (Markdown reports), saved atomically."""


class PlotlyJSONDataset(_AtomicSave, _PlotlyJSONDataset):
    """`plotly.JSONDataset`, saved atomically."""
