"""Reusing PPO's round evaluations: fingerprints of weights and protocol, the stamped history,
and the evaluation stage taking a stored evaluation only where both match."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from peft import get_peft_model

from alignment_stages.evaluation.compare import compare_stages
from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.evaluation.memo import (
    GENERATIONS_COLUMN,
    reusable_evaluations,
    weights_fingerprint,
)
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.artifacts import ModelArtifact, load_artifact, save_artifact
from alignment_stages.models.config import LoraParams
from alignment_stages.models.lora import lora_config
from alignment_stages.reward.train import reward_model_from_policy
from tests.evaluation.test_snapshot import EVAL_PROMPTS
from tests.models.tiny import tiny_policy

PROBE = pd.DataFrame({
    "prompt_messages": [[{"role": "user", "content": "How do I cook rice?"}]],
    "reference_response": ["Rinse it, then simmer it."],
})  # fmt: skip
PARAMS = RoundEvalParams(samples_per_prompt=2, max_new_tokens=6, batch_size=4, precision="fp32")
JUDGES = JudgesParams(regex={"rules": {"benign": ["go away"]}})


@pytest.fixture(scope="module")
def setting():
    base = tiny_policy()
    reward_model = reward_model_from_policy(base)
    torch.manual_seed(0)
    moved = copy.deepcopy(base.model)
    with torch.no_grad():
        moved.lm_head.weight.add_(0.5 * torch.randn_like(moved.lm_head.weight))
    return base, ModelArtifact(model=moved, tokenizer=base.tokenizer), reward_model


def _protocol(base, reward_model, **changes) -> EvalProtocol:
    params = PARAMS.model_copy(update=changes.pop("params", {}))
    return EvalProtocol.from_config(
        base, reward_model, changes.get("judges", JUDGES), changes.get("prompts", EVAL_PROMPTS),
        PROBE, params,
    )  # fmt: skip


def test_a_lora_policy_keeps_its_fingerprint_through_save_and_load(tmp_path):
    policy = tiny_policy()
    model = get_peft_model(policy.model, lora_config(LoraParams(enabled=True, r=4), "CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero: make the adapter count
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    artifact = ModelArtifact(model=model, tokenizer=policy.tokenizer)
    save_artifact(artifact, tmp_path / "round_001")
    loaded = load_artifact(tmp_path / "round_001", "causal_lm")
    assert weights_fingerprint(loaded.model) == weights_fingerprint(model)
    with torch.no_grad():
        next(p for n, p in loaded.model.named_parameters() if "lora_A" in n).view(-1)[0] += 1e-6
    assert weights_fingerprint(loaded.model) != weights_fingerprint(model)


def test_the_protocol_changes_with_every_input_the_numbers_depend_on(setting):
    base, moved, reward_model = setting
    reference = _protocol(base, reward_model).fingerprint()
    assert _protocol(base, reward_model).fingerprint() == reference
    other_prompts = EVAL_PROMPTS.assign(
        prompt_messages=EVAL_PROMPTS["prompt_messages"][::-1].values
    )
    changed = [
        _protocol(base, reward_model, params={"seed": 7}),
        _protocol(base, reward_model, params={"max_new_tokens": 7}),
        _protocol(base, reward_model, prompts=other_prompts),
        _protocol(base, reward_model, judges=JudgesParams(regex={"rules": {"benign": ["no"]}})),
        _protocol(moved, reward_model),  # another base: another KL
        _protocol(base, reward_model_from_policy(moved)),
    ]
    changed = [protocol.fingerprint() for protocol in changed]
    assert reference not in changed and len(set(changed)) == len(changed)


def _stamped_history(base, moved, protocol: EvalProtocol) -> pd.DataFrame:
    rows = [
        {"checkpoint": name, **protocol.evaluate(policy).history_row()}
        for name, policy in (("base_policy", base), ("round_001", moved))
    ]
    return protocol.stamp(pd.DataFrame(rows), {"base_policy": base, "round_001": moved})


def test_the_stage_reuses_what_matches_and_evaluates_the_rest(setting, monkeypatch, tmp_path):
    base, moved, reward_model = setting
    protocol = _protocol(base, reward_model)
    history = _stamped_history(base, moved, protocol)
    history.to_parquet(tmp_path / "ppo_history.parquet")  # as the catalog stores it
    history = pd.read_parquet(tmp_path / "ppo_history.parquet")
    policies = {
        "base": base,
        "ppo": moved,
        "dpo": ModelArtifact(
            model=copy.deepcopy(moved.model).requires_grad_(False), tokenizer=base.tokenizer
        ),
    }
    with torch.no_grad():
        policies["dpo"].model.lm_head.weight.mul_(0.5)
    fresh, _, _ = compare_stages(policies, protocol, 2)

    evaluated, evaluate = [], EvalProtocol.evaluate
    monkeypatch.setattr(EvalProtocol, "evaluate",
                        lambda self, policy, *a: evaluated.append(policy) or evaluate(self, policy, *a))  # fmt: skip
    reused, _, _ = compare_stages(policies, protocol, 2, protocol.reusable(history))
    assert evaluated == [policies["dpo"]]  # base and ppo came from the history
    pd.testing.assert_frame_equal(reused, fresh)

    evaluated.clear()
    other = _protocol(base, reward_model, params={"seed": 9})
    compare_stages(policies, protocol, 2, other.reusable(history))
    assert len(evaluated) == 3  # another protocol: nothing is reused


def test_a_history_without_the_columns_offers_nothing():
    assert (
        reusable_evaluations(pd.DataFrame({"round": [0], "checkpoint": ["base_policy"]}), "p") == {}
    )


def test_a_damaged_stored_evaluation_is_evaluated_again_not_reused(setting, caplog):
    base, moved, reward_model = setting
    protocol = _protocol(base, reward_model)
    history = _stamped_history(base, moved, protocol)
    history.loc[0, GENERATIONS_COLUMN] = '{"texts": ["cut'  # a truncated write
    history.loc[1, GENERATIONS_COLUMN] = '{"texts": []}'  # fields missing
    assert protocol.reusable(history) == {}
    assert caplog.text.count("unreadable") == 2 and "base_policy" in caplog.text
