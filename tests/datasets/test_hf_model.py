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


@pytest.mark.parametrize("url", ["s3://bucket/models/policy", "gs://bucket/policy"])
def test_remote_urls_are_refused_not_written_locally(url):
    with pytest.raises(DatasetError, match="local directories only"):
        HFModelDataset(filepath=url, version=Version(None, None))


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
