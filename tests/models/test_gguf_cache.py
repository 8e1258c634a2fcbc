"""The dequantised GGUF kept after its first load: read back the same, written whole or not at
all, and never trusted over the GGUF when it does not load."""

from __future__ import annotations

import logging

import pytest
import torch

from alignment_stages.models import checkpoints
from alignment_stages.models.checkpoints import load_checkpoint
from tests.models.smollm2 import SMOLLM2_INSTALLED, SMOLLM2_SOURCE
from tests.models.tiny import tiny_policy

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    """A .gguf file whose "dequantisation" is a tiny policy, counting how often it is read."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(64)))
    reads = []

    def dequantise(gguf):
        reads.append(gguf)
        return tiny_policy()

    monkeypatch.setattr(checkpoints, "load_gguf", dequantise)
    return path, reads


def _logits(policy):
    ids = torch.tensor([policy.tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]])  # fmt: skip
    with torch.no_grad():
        return policy.model(input_ids=ids).logits


def test_the_second_load_reads_the_kept_folder_and_gives_the_same_policy(fake_gguf, tmp_path):
    path, reads = fake_gguf
    cache = tmp_path / "cache"
    first = load_checkpoint(str(path), gguf_cache=cache)
    second = load_checkpoint(str(path), gguf_cache=cache)
    assert len(reads) == 1
    (entry,) = cache.iterdir()
    assert entry.name.startswith("model-") and list(entry.rglob("*.safetensors"))
    assert not list(entry.rglob("*.bin")) and not list(entry.rglob("*.pt"))
    torch.testing.assert_close(_logits(second), _logits(first))
    assert second.tokenizer.chat_template == first.tokenizer.chat_template


def test_without_a_cache_every_load_reads_the_gguf_and_nothing_is_written(fake_gguf, tmp_path):
    path, reads = fake_gguf
    load_checkpoint(str(path), gguf_cache=None)
    load_checkpoint(str(path), gguf_cache=None)
    assert len(reads) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_another_file_gets_a_folder_of_its_own(fake_gguf, tmp_path):
    path, reads = fake_gguf
    cache = tmp_path / "cache"
    load_checkpoint(str(path), gguf_cache=cache)
    path.write_bytes(path.read_bytes() + b"another revision")
    load_checkpoint(str(path), gguf_cache=cache)
    assert len(reads) == 2 and len(list(cache.iterdir())) == 2


def test_a_write_that_fails_leaves_no_folder_and_loses_nothing(fake_gguf, tmp_path, monkeypatch):
    path, reads = fake_gguf
    cache = tmp_path / "cache"

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(tiny_policy().tokenizer), "save_pretrained", disk_full)
    policy = load_checkpoint(str(path), gguf_cache=cache)
    assert policy.tokenizer.chat_template  # the GGUF's policy, all the same
    assert list(cache.iterdir()) == []  # neither a folder nor its half-written staging copy
    monkeypatch.undo()
    monkeypatch.setattr(checkpoints, "load_gguf", lambda gguf: reads.append(gguf) or tiny_policy())
    load_checkpoint(str(path), gguf_cache=cache)
    assert len(reads) == 2  # read from the GGUF again, and kept this time
    assert [p.name.startswith("model-") for p in cache.iterdir()] == [True]


def test_a_killed_writes_staging_folder_is_never_read(fake_gguf, tmp_path):
    path, reads = fake_gguf
    cache = tmp_path / "cache"
    entry = checkpoints.cache_entry(path, cache)
    staging = cache / f".{entry.name}.killed"
    staging.mkdir(parents=True)
    (staging / "config.json").write_text("{")
    load_checkpoint(str(path), gguf_cache=cache)
    assert len(reads) == 1 and entry.is_dir()


def test_a_kept_folder_that_does_not_load_is_named_and_the_gguf_read(fake_gguf, tmp_path, caplog):
    path, reads = fake_gguf
    cache = tmp_path / "cache"
    load_checkpoint(str(path), gguf_cache=cache)
    (entry,) = cache.iterdir()
    (weights,) = entry.rglob("*.safetensors")
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING, logger="alignment_stages.models.gguf_cache"):
        policy = load_checkpoint(str(path), gguf_cache=cache)
    assert len(reads) == 2 and policy.tokenizer.chat_template
    assert str(entry) in caplog.text and "Delete the folder" in caplog.text


@pytest.mark.skipif(not SMOLLM2_INSTALLED, reason="smollm2 extra not installed")
def test_the_shipped_gguf_reads_back_from_its_folder_as_it_was_dequantised(tmp_path):
    dequantised = load_checkpoint(SMOLLM2_SOURCE, gguf_cache=tmp_path)
    kept = load_checkpoint(SMOLLM2_SOURCE, gguf_cache=tmp_path)
    assert type(kept.model) is type(dequantised.model)
    torch.testing.assert_close(_logits(kept), _logits(dequantised), rtol=0, atol=0)
    for name in ("chat_template", "eos_token", "pad_token", "bos_token"):
        assert getattr(kept.tokenizer, name) == getattr(dequantised.tokenizer, name), name
    text = "Hi! <|im_start|>user\nWhat's 2+2?<|im_end|>"
    assert kept.tokenizer(text)["input_ids"] == dequantised.tokenizer(text)["input_ids"]
    assert len(kept.tokenizer) == len(dequantised.tokenizer)
