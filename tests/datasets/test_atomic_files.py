"""Atomic file datasets: a process killed in the middle of a write never leaves a torn file as
"latest", and the next save removes what it left."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from kedro.io.core import Version

from alignment_stages.datasets import JSONDataset, ParquetDataset, PlotlyJSONDataset, TextDataset
from alignment_stages.staging import is_abandoned, staging_name
from tests.conftest import REPO_ROOT

GOOD, TORN, NEXT = (
    "2026-01-01T00.00.00.000Z",
    "2026-01-02T00.00.00.000Z",
    "2026-01-03T00.00.00.000Z",
)

# kind → (dataset class, file name, good data, data of the killed save, expression for the child)
KINDS = {
    "parquet": (ParquetDataset, "table.parquet", pd.DataFrame({"run": ["good"] * 3}),
                "pd.DataFrame({'run': ['torn'] * 100_000})"),
    "json": (JSONDataset, "report.json", {"run": "good"}, "{'run': 'torn' * 100_000}"),
    "markdown": (TextDataset, "report.md", "# good\n", "'# torn\\n' * 100_000"),
    "plotly": (PlotlyJSONDataset, "chart.json", go.Figure(go.Bar(y=[1, 2])),
               "go.Figure(go.Bar(y=list(range(100_000))))"),
}  # fmt: skip

# Every write goes through fsspec's local file object: write half of the first chunk, make it
# reach the disk, then hang until killed, as a process killed mid-write would.
KILLED_WRITE = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    import fsspec.implementations.local as local
    import pandas as pd
    import plotly.graph_objects as go
    from kedro.io.core import Version
    from alignment_stages import datasets

    write = local.LocalFileOpener.write
    def stall(self, data):
        write(self, data[: len(data) // 2])
        self.f.flush()
        print("stalled", flush=True)
        time.sleep(120)
    local.LocalFileOpener.write = stall
    dataset = datasets.{cls}(filepath={path!r}, version=Version(None, {version!r}))
    dataset.save({data})
    """
)


def _dataset(cls, path: Path, load=None, save=None):
    return cls(filepath=str(path), version=Version(load, save))


def _equal(kind: str, loaded, expected) -> bool:
    if kind == "parquet":
        return loaded.equals(expected)
    if kind == "plotly":
        return list(loaded.data[0].y) == list(expected.data[0].y)
    return loaded == expected


def _kill_during_save(cls, path: Path, data: str) -> None:
    script = KILLED_WRITE.format(
        root=str(REPO_ROOT), cls=cls.__name__, path=str(path), version=TORN, data=data
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "stalled"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_write_killed_midway_leaves_latest_on_the_previous_version(tmp_path, kind):
    cls, name, good, torn = KINDS[kind]
    path = tmp_path / name
    _dataset(cls, path, save=GOOD).save(good)
    _kill_during_save(cls, path, torn)

    leftovers = list((path / TORN).iterdir())
    assert [p.name.startswith(f".{name}.tmp-") for p in leftovers] == [True]
    assert leftovers[0].stat().st_size > 0  # the torn bytes did reach the disk
    latest = _dataset(cls, path)
    assert latest.resolve_load_version() == GOOD
    assert _equal(kind, latest.load(), good)

    _dataset(cls, path, save=NEXT).save(good)  # the next save removes the abandoned staging
    assert sorted(p.name for p in path.iterdir()) == [GOOD, NEXT]
    assert [p.name for p in (path / NEXT).iterdir()] == [name]


def test_an_unversioned_file_is_replaced_whole(tmp_path):
    dataset = JSONDataset(filepath=str(tmp_path / "a.json"))
    dataset.save({"first": 1})
    dataset.save({"second": 2})
    assert dataset.load() == {"second": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "report.json"
    with pytest.raises(Exception, match="not JSON serializable"):
        _dataset(JSONDataset, path, save=GOOD).save({"x": object()})
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_staging_of_a_live_process_is_kept_and_of_a_dead_or_older_release_removed():
    assert not is_abandoned(staging_name("x.parquet"))  # this process, still writing
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = staging_name("x.parquet").replace(f"-{os.getpid()}-", f"-{finished.stdout.strip()}-")
    assert is_abandoned(dead)
    assert is_abandoned(".base_policy.tmp-1a2b3c4d")  # the name format before owners
    assert not is_abandoned(".x.parquet.tmp-otherhost-1-1a2b3c4d")  # another host's to clean
