"""Wall time and peak resident memory of one piece of work, measured from inside the process.

Linux keeps a process's peak RSS (VmHWM in /proc/self/status) and resets it when "5" is written
to /proc/self/clear_refs (proc(5)), so each stage's own peak can be read, not the running maximum
of everything before it. Where that file is not writable (another OS, a locked-down container)
the figure falls back to `ru_maxrss`, the peak since process start, and says so.
"""

from __future__ import annotations

import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Usage:
    seconds: float
    peak_rss_mb: float
    scope: str  # "stage": this piece of work's own peak; "process": the peak since start


def _peak_rss_kb() -> int:
    try:
        match = re.search(r"VmHWM:\s+(\d+) kB", _STATUS.read_text())
    except OSError:
        match = None
    if match:
        return int(match.group(1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, kB elsewhere


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class UsageMeter:
    """`start()`, then `stop()` -> Usage of what ran in between."""

    def __init__(self) -> None:
        self._started, self._scope = time.perf_counter(), "process"

    def start(self) -> None:
        self._scope = "stage" if _reset_peak() else "process"
        self._started = time.perf_counter()

    def stop(self) -> Usage:
        return Usage(time.perf_counter() - self._started, _peak_rss_kb() / 1024, self._scope)
