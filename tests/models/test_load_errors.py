"""Loading errors that name what to fix: an unreachable hub id fails fast, a truncated
safetensors file names its path."""

import time

import pytest

from alignment_stages.models import hub
from alignment_stages.models.artifacts import load_artifact, save_artifact
from alignment_stages.models.base import load_pretrained_policy
from alignment_stages.models.config import BaseModelParams
from tests.models.tiny import tiny_policy


@pytest.mark.parametrize("offline", [True, False])
def test_an_unreachable_hub_id_fails_fast(monkeypatch, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(hub, "_hub_reachable", lambda endpoint: False)
    params = BaseModelParams(pretrained="no-such-org/no-such-model")
    started = time.perf_counter()
    expected = "HF_HUB_OFFLINE is set" if offline else "is unreachable"
    with pytest.raises(FileNotFoundError, match=f"no-such-org/no-such-model.*{expected}"):
        load_pretrained_policy(params)
    assert time.perf_counter() - started < 10


def test_a_name_that_is_no_hub_id_says_so(monkeypatch):
    with pytest.raises(FileNotFoundError, match="nor a valid hub id"):
        load_pretrained_policy(BaseModelParams(pretrained="my model!"))


def test_truncated_safetensors_name_the_file(tmp_path):
    save_artifact(tiny_policy(), tmp_path / "policy")
    weights = tmp_path / "policy" / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"policy/model: unreadable safetensors .*truncated"):
        load_artifact(tmp_path / "policy", "causal_lm")
