"""The `ppo_checkpoints` catalog entry: where this run's PPO round checkpoints live.

It is an input of `shape_policy_with_ppo`, not an output. A node's outputs are written once, at
its end; a checkpoint has to be written after every round, while the node runs, so the node is
handed the run's checkpoint folder and the stage writes into it (`ppo/checkpoint.py`).

The folder is `<filepath>/<save version>/<name>/`: the save version is the run's (the session id,
or `ALIGNMENT_STAGES_RUN_VERSION` when it is pinned), so a rerun with the same run version finds
the rounds the killed run completed, and any other run starts from an empty folder::

    ppo_checkpoints:
      type: alignment_stages.datasets.RoundCheckpointsDataset
      filepath: data/06_models/ppo_checkpoints
      versioned: true
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_protocol_and_path

from alignment_stages.ppo.checkpoint import RoundCheckpoints


class RoundCheckpointsDataset(AbstractVersionedDataset[None, RoundCheckpoints]):
    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol != "file":
            # Round checkpoints are written with local renames (atomic only on a file system).
            raise DatasetError(
                f"ppo_checkpoints must be a local path, got {filepath!r} ({protocol}://)"
            )
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> RoundCheckpoints:
        if not self._version:
            return RoundCheckpoints(str(self._filepath))
        return RoundCheckpoints(str(self._get_versioned_path(self.resolve_save_version())))

    def save(self, data: None) -> None:
        raise DatasetError(
            "ppo_checkpoints is written round by round by the ppo_shaping stage, not saved "
            "as a node output"
        )

    def _exists(self) -> bool:
        return True  # an empty folder is a valid start: the run has no completed round yet

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}
