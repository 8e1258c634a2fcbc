"""Real checkpoints as the base policy: GGUF, package sources, and every bad input named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from alignment_stages.models.artifacts import UnsafeCheckpointError, load_artifact, save_artifact
from alignment_stages.models.base import load_pretrained_policy
from alignment_stages.models.checkpoints import CheckpointError, load_checkpoint, resolve_source
from alignment_stages.models.config import BaseModelParams
from tests.models.smollm2 import SMOLLM2_INSTALLED, SMOLLM2_SOURCE, smollm2_policy
from tests.models.tiny import tiny_policy

needs_smollm2 = pytest.mark.skipif(not SMOLLM2_INSTALLED, reason="smollm2 extra not installed")


def _params(source: str) -> BaseModelParams:
    return BaseModelParams(pretrained=source, sft={"enabled": False})


def test_a_file_that_is_not_gguf_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(CheckpointError, match=r"model\.gguf is not a GGUF file.*reinstall"):
        load_checkpoint(str(path))


@needs_smollm2
@pytest.mark.parametrize("kept_bytes", [2_000, 5_000_000])
def test_a_truncated_gguf_is_named_with_what_to_do(tmp_path, kept_bytes):
    whole = Path(resolve_source(SMOLLM2_SOURCE))
    path = tmp_path / "cut.gguf"
    with whole.open("rb") as source:
        path.write_bytes(source.read(kept_bytes))
    with pytest.raises(CheckpointError, match=r"cut\.gguf is corrupt or truncated.*reinstall"):
        load_checkpoint(str(path))


def test_a_gguf_of_an_architecture_transformers_cannot_dequantise(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "rwkv.gguf"
    writer = GGUFWriter(str(path), "rwkv7")
    writer.add_tensor("x", np.zeros(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(CheckpointError, match=r"rwkv\.gguf.*architecture 'rwkv7'.*safetensors"):
        load_checkpoint(str(path))


def test_a_checkpoint_with_only_pickle_weights_is_refused(tmp_path):
    policy = tiny_policy()
    policy.model.config.save_pretrained(tmp_path)
    policy.tokenizer.save_pretrained(tmp_path)
    torch.save(policy.model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match=r"pytorch_model\.bin.*safe_serialization"):
        load_pretrained_policy(_params(str(tmp_path)))
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match=r"no \*\.safetensors weights"):
        load_pretrained_policy(_params(str(tmp_path)))


def test_a_tokenizer_without_a_chat_template_is_refused(tmp_path):
    policy = tiny_policy()
    policy.tokenizer.chat_template = None
    policy.model.save_pretrained(tmp_path)
    policy.tokenizer.save_pretrained(tmp_path)
    for template in tmp_path.glob("chat_template.*"):
        template.unlink()
    with pytest.raises(CheckpointError, match=r"no chat template.*chat_template"):
        load_pretrained_policy(_params(str(tmp_path)))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/no/such/model.gguf", r"GGUF file /no/such/model\.gguf does not exist"),
        ("./missing-checkpoint", r"missing-checkpoint does not exist"),
        ("package:no_such_package/model.gguf", r"'no_such_package' is not installed.*pip"),
    ],
)
def test_a_pretrained_source_that_does_not_exist_is_named(source, message):
    with pytest.raises(FileNotFoundError, match=message):
        load_pretrained_policy(_params(source))


@needs_smollm2
def test_the_shipped_gguf_becomes_a_safetensors_artifact_that_loads_back(tmp_path):
    policy = smollm2_policy()
    model, tokenizer = policy.model, policy.tokenizer
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 134_000_000 < sum(p.numel() for p in model.parameters()) < 135_000_000
    # pad == eos == <|im_end|> in the checkpoint: pad gets its own token, EOS stays id 2.
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == 2
    assert tokenizer.pad_token_id == 49_152 and model.config.pad_token_id == 49_152
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    save_artifact(policy, tmp_path / "base")
    assert not list((tmp_path / "base").rglob("*.bin")) and not list(
        (tmp_path / "base").rglob("*.gguf")
    )
    loaded = load_artifact(tmp_path / "base", "causal_lm")
    ids = torch.tensor([tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=True,
        return_dict=True)["input_ids"]])  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits, model(input_ids=ids).logits)
    assert loaded.tokenizer.chat_template == tokenizer.chat_template
    shutil.rmtree(tmp_path / "base")
