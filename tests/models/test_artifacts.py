"""Round trips, safety defaults and atomicity of model artifacts (plain module, no Kedro)."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from alignment_stages.models.artifacts import (
    COMPLETION_MARKER,
    IncompleteArtifactError,
    ModelArtifact,
    UnsafeCheckpointError,
    load_artifact,
    save_artifact,
)
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_causal_lm_round_trip_keeps_weights_tokenizer_and_chat_template(tmp_path):
    policy = tiny_policy()
    save_artifact(policy, tmp_path / "a")
    loaded = load_artifact(tmp_path / "a", "causal_lm")
    assert _same_weights(policy.model, loaded.model)
    assert loaded.tokenizer.chat_template == policy.tokenizer.chat_template
    assert loaded.tokenizer.pad_token_id != loaded.tokenizer.eos_token_id
    files = {p.name for p in (tmp_path / "a").rglob("*")}
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)


def test_reward_model_round_trip(tmp_path):
    reward_model = reward_model_from_policy(tiny_policy())
    save_artifact(reward_model, tmp_path / "rm")
    loaded = load_artifact(tmp_path / "rm", "sequence_classification")
    assert loaded.model.config.num_labels == 1
    assert _same_weights(reward_model.model, loaded.model)


def test_lora_adapter_is_saved_with_its_base(tmp_path):
    policy = tiny_policy()
    config = LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
    )
    lora = ModelArtifact(model=get_peft_model(policy.model, config), tokenizer=policy.tokenizer)
    with torch.no_grad():  # make the adapter non-trivial so the round trip is meaningful
        for name, param in lora.model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.5)
    save_artifact(lora, tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "lora" / "model" / "model.safetensors").is_file()
    loaded = load_artifact(tmp_path / "lora", "causal_lm")
    assert loaded.is_lora and loaded.summary()["lora"] is True
    ids = torch.tensor([[1, 5, 9, 12]])
    torch.testing.assert_close(lora.model(ids).logits, loaded.model(ids).logits)


def test_pickle_weights_are_refused(tmp_path):
    save_artifact(tiny_policy(), tmp_path / "a")
    torch.save({"w": torch.zeros(1)}, tmp_path / "a" / "model" / "pytorch_model.bin")
    with pytest.raises(UnsafeCheckpointError, match="pickle weight files.*pytorch_model.bin"):
        load_artifact(tmp_path / "a", "causal_lm")


def test_directory_without_marker_is_not_loaded(tmp_path):
    save_artifact(tiny_policy(), tmp_path / "a")
    (tmp_path / "a" / COMPLETION_MARKER).unlink()
    with pytest.raises(IncompleteArtifactError, match="save did not finish"):
        load_artifact(tmp_path / "a", "causal_lm")


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model artifact"):
        load_artifact(tmp_path / "nothing", "causal_lm")


def test_remote_code_is_off_by_default(tmp_path, monkeypatch):
    save_artifact(tiny_policy(), tmp_path / "a")
    seen = {}
    original = AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.update(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    load_artifact(tmp_path / "a", "causal_lm")
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True


def test_failed_save_leaves_nothing_behind(tmp_path, monkeypatch):
    policy = tiny_policy()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(policy.tokenizer, "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        save_artifact(policy, tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


def test_existing_artifact_is_never_overwritten(tmp_path):
    save_artifact(tiny_policy(), tmp_path / "a")
    with pytest.raises(FileExistsError):
        save_artifact(tiny_policy(), tmp_path / "a")
