"""HFModelDataset: versioning, --load-versions, crash safety, no copies, preview."""

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from kedro.io.core import DatasetError, Version

from alignment_stages.datasets import HFModelDataset
from tests.conftest import REPO_ROOT
from tests.models.tiny import tiny_policy


def _dataset(tmp_path, version=None):
    return HFModelDataset(filepath=str(tmp_path / "policy"), version=version or Version(None, None))


def _save_version(tmp_path, name, artifact):
    _dataset(tmp_path, Version(None, name)).save(artifact)


def test_versions_latest_and_pinned_loads(tmp_path):
    first, second = tiny_policy(), tiny_policy()
    with torch.no_grad():
        second.model.lm_head.weight.add_(1.0)
    _save_version(tmp_path, "2026-01-01T00.00.00.000Z", first)
    _save_version(tmp_path, "2026-01-02T00.00.00.000Z", second)
    latest = _dataset(tmp_path).load()
    pinned = _dataset(tmp_path, Version("2026-01-01T00.00.00.000Z", None)).load()
    assert torch.equal(latest.model.lm_head.weight, second.model.lm_head.weight)
    assert torch.equal(pinned.model.lm_head.weight, first.model.lm_head.weight)


def test_object_saved_in_this_run_is_handed_on_without_a_copy(tmp_path):
    dataset = _dataset(tmp_path)
    policy = tiny_policy()
    dataset.save(policy)
    assert dataset.load() is policy


def test_preview_is_a_small_json_summary(tmp_path):
    dataset = _dataset(tmp_path)
    dataset.save(tiny_policy())
    summary = json.loads(dataset.preview())
    assert summary["architecture"] == "LlamaForCausalLM"
    assert summary["lora"] is False and 0 < summary["parameters"] < 100_000


def test_no_version_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="Did not find any versions"):
        _dataset(tmp_path).load()


@pytest.fixture
def bucket():
    """An fsspec object store in memory: no rename, no directories, like s3://."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"memory://bucket-{time.time_ns()}"
    yield root, fs
    fs.rm(root.removeprefix("memory:/"), recursive=True) if fs.exists(root) else None


def _remote(root, version=None, cls=HFModelDataset):
    return cls(filepath=f"{root}/06_models/policy", version=version or Version(None, None))


def test_remote_versions_round_trip_through_an_object_store(bucket):
    root, fs = bucket
    first, second = tiny_policy(), tiny_policy()
    with torch.no_grad():
        second.model.lm_head.weight.add_(1.0)
    _remote(root, Version(None, "2026-01-01T00.00.00.000Z")).save(first)
    _remote(root, Version(None, "2026-01-02T00.00.00.000Z")).save(second)
    stored = fs.find(root)
    assert any(p.endswith("model.safetensors") for p in stored)
    assert not any(p.endswith((".bin", ".pt", ".pkl")) for p in stored)
    latest = _remote(root).load()  # a fresh dataset: read back from the store, not the cache
    assert torch.equal(latest.model.lm_head.weight, second.model.lm_head.weight)
    pinned = _remote(root, Version("2026-01-01T00.00.00.000Z", None)).load()
    assert torch.equal(pinned.model.lm_head.weight, first.model.lm_head.weight)
    assert json.loads(_remote(root).preview())["architecture"] == "LlamaForCausalLM"


def test_a_failed_upload_is_removed_and_never_becomes_latest(bucket, monkeypatch):
    root, fs = bucket
    _remote(root, Version(None, "2026-01-01T00.00.00.000Z")).save(tiny_policy())
    real_put = type(fs).put_file
    calls = []

    def flaky_put(self, source, target, **kwargs):
        calls.append(target)
        if len(calls) == 3:
            raise OSError("connection reset")
        return real_put(self, source, target, **kwargs)

    monkeypatch.setattr(type(fs), "put_file", flaky_put)
    with pytest.raises(Exception, match="connection reset"):
        _remote(root, Version(None, "2026-01-02T00.00.00.000Z")).save(tiny_policy())
    monkeypatch.undo()
    assert fs.find(f"{root}/06_models/policy/2026-01-02T00.00.00.000Z") == []  # nothing left
    # an upload cut off before its marker (a killed process) is skipped by "latest" too
    fs.pipe(f"{root}/06_models/policy/2026-01-03T00.00.00.000Z/policy/model/config.json", b"{}")
    assert _remote(root).resolve_load_version() == "2026-01-01T00.00.00.000Z"
    with pytest.raises(DatasetError, match="did not finish"):
        _remote(root, Version("2026-01-03T00.00.00.000Z", None)).load()


def test_a_remote_collection_saves_atomically_and_loads_each_artifact_lazily(bucket):
    from alignment_stages.datasets import HFModelCollectionDataset

    root, fs = bucket
    rounds = {"round_001": tiny_policy(), "round_002": tiny_policy()}
    _remote(root, cls=HFModelCollectionDataset).save(rounds)
    loaded = _remote(root, cls=HFModelCollectionDataset).load()
    assert sorted(loaded) == ["round_001", "round_002"] and loaded.version
    artifact = loaded["round_002"]()
    assert torch.equal(artifact.model.lm_head.weight, rounds["round_002"].model.lm_head.weight)
    assert set(json.loads(_remote(root, cls=HFModelCollectionDataset).preview())) == set(rounds)


def test_a_remote_dataset_pickles_for_the_parallel_runner(bucket):
    import pickle

    root, _ = bucket
    dataset = pickle.loads(pickle.dumps(_remote(root)))
    assert dataset._describe()["protocol"] == "memory"


def test_saving_something_else_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="expected a ModelArtifact"):
        _dataset(tmp_path).save({"not": "a model"})


KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from kedro.io.core import Version
    from alignment_stages.datasets import HFModelDataset
    from tests.models.tiny import tiny_policy

    policy = tiny_policy()
    def stall(*args, **kwargs):  # the model weights are on disk; the tokenizer never gets there
        print("stalled", flush=True)
        time.sleep(60)
    policy.tokenizer.save_pretrained = stall
    HFModelDataset(filepath={path!r}, version=Version(None, "2026-01-02T00.00.00.000Z")).save(policy)
    """
)


def test_a_save_killed_midway_never_becomes_latest(tmp_path):
    good = tiny_policy()
    _save_version(tmp_path, "2026-01-01T00.00.00.000Z", good)
    script = KILLED_SAVE.format(root=str(REPO_ROOT), path=str(tmp_path / "policy"))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "stalled"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    time.sleep(0.1)

    crashed = tmp_path / "policy" / "2026-01-02T00.00.00.000Z"
    leftovers = [p.name for p in crashed.iterdir()]
    assert leftovers and all(name.startswith(".policy.tmp-") for name in leftovers)
    loaded = _dataset(tmp_path).load()
    assert torch.equal(loaded.model.lm_head.weight, good.model.lm_head.weight)
    assert _dataset(tmp_path).resolve_load_version() == "2026-01-01T00.00.00.000Z"

    # The next save removes the staging folder the killed one left, and its empty version.
    _save_version(tmp_path, "2026-01-03T00.00.00.000Z", good)
    assert not crashed.exists()
    assert _dataset(tmp_path).resolve_load_version() == "2026-01-03T00.00.00.000Z"


def test_a_collection_says_whether_its_version_was_pinned(tmp_path):
    from alignment_stages.datasets import HFModelCollectionDataset

    path = str(tmp_path / "rounds")
    first = "2026-01-01T00.00.00.000Z"
    HFModelCollectionDataset(filepath=path, version=Version(None, first)).save(
        {"round_001": tiny_policy()}
    )
    latest = HFModelCollectionDataset(filepath=path, version=Version(None, None)).load()
    pinned = HFModelCollectionDataset(filepath=path, version=Version(first, None)).load()
    assert (latest.version, latest.pinned) == (first, False)
    assert (pinned.version, pinned.pinned) == (first, True)


def test_an_incomplete_newest_version_is_skipped_naming_both_versions(tmp_path, caplog):
    good = tiny_policy()
    _save_version(tmp_path, "2026-01-01T00.00.00.000Z", good)
    _save_version(tmp_path, "2026-01-02T00.00.00.000Z", tiny_policy())
    newest = tmp_path / "policy" / "2026-01-02T00.00.00.000Z" / "policy"
    (newest / "COMPLETE").unlink()  # an interrupted copy or upload, an older release's save
    with caplog.at_level("WARNING", logger="alignment_stages.datasets.hf_model"):
        assert _dataset(tmp_path).resolve_load_version() == "2026-01-01T00.00.00.000Z"
    (message,) = [r.getMessage() for r in caplog.records]
    assert "skipping version 2026-01-02T00.00.00.000Z" in message
    assert "loading 2026-01-01T00.00.00.000Z" in message and str(tmp_path / "policy") in message
    loaded = _dataset(tmp_path).load()
    assert torch.equal(loaded.model.lm_head.weight, good.model.lm_head.weight)
    caplog.clear()
    _dataset(tmp_path, Version("2026-01-01T00.00.00.000Z", None)).load()
    assert not caplog.records  # a pinned version skips nothing
