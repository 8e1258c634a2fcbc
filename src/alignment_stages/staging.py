"""Names for the hidden staging siblings of atomic saves, and the cleanup of abandoned ones.

Every versioned output (a model directory, a parquet table, a JSON or Markdown file) is written
to `.<name>.tmp-<host>-<pid>-<random>` beside its target and renamed into place when complete,
so a killed process leaves only a staging entry that no load or "latest" ever matches. The
owner in the name lets a later save tell an abandoned entry (its process is gone) from one
still being written (another process of the same host, still alive).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from pathlib import PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

_OWNED = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def staging_name(name: str) -> str:
    return f".{name}.tmp-{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def is_abandoned(staging: str) -> bool:
    """True when the process that made this staging entry can no longer finish it.

    Entries without an owner come from releases before the owner was recorded, which had no
    way to be still running next to this one; entries of other hosts are left to those hosts.
    """
    owned = _OWNED.search(staging)
    if owned is None:
        return True
    if owned["host"] != _host():
        return False
    pid = int(owned["pid"])
    return pid != os.getpid() and not _is_alive(pid)


def remove_abandoned_staging(fs: Any, folder: str, name: str, versioned: bool) -> list[str]:
    """Remove `.<name>.tmp-*` entries left by killed saves: in every version folder of
    `folder` when `versioned`, else in `folder` itself. A version folder the removal leaves
    empty goes too. Returns what was removed."""
    pattern = f"{folder}/*/.{name}.tmp-*" if versioned else f"{folder}/.{name}.tmp-*"
    removed = []
    for entry in sorted(fs.glob(pattern)):
        if not is_abandoned(PurePosixPath(entry).name):
            continue
        logger.warning("Removing %s, left by a save that did not finish", entry)
        fs.rm(entry, recursive=True)
        removed.append(entry)
        parent = str(PurePosixPath(entry).parent)
        if versioned and fs.isdir(parent) and not fs.ls(parent):
            fs.rmdir(parent)
    return removed
