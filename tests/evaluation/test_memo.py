"""Reusing PPO's round evaluations: fingerprints of weights and protocol, the stamped history,
and the evaluation stage taking a stored evaluation only where both match."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
from peft import get_peft_model

from alignment_stages.evaluation import compare as compare_module
from alignment_stages.evaluation.compare import compare_stages
from alignment_stages.evaluation.memo import (
    GENERATIONS_COLUMN,
    generations_to_json,
    protocol_fingerprint,
    reusable_evaluations,
    stamp_history,
    weights_fingerprint,
)
from alignment_stages.evaluation.snapshot import evaluate_policy
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.models.artifacts import ModelArtifact, load_artifact, save_artifact
from alignment_stages.models.config import LoraParams
from alignment_stages.models.lora import lora_config
from alignment_stages.ppo.config import RoundEvalParams
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


def _protocol(base, reward_model, **changes):
    params = PARAMS.model_copy(update=changes.pop("params", {}))
    return protocol_fingerprint(
        params, changes.get("prompts", EVAL_PROMPTS), PROBE, changes.get("judges", JUDGES),
        reward_model, base,
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
    reference = _protocol(base, reward_model)
    assert _protocol(base, reward_model) == reference
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
    assert reference not in changed and len(set(changed)) == len(changed)


def _stamped_history(base, moved, reward_model, protocol):
    panel = build_judge_panel(JUDGES, reward_model)
    rows = []
    for name, policy in (("base_policy", base), ("round_001", moved)):
        metrics, generations, _ = evaluate_policy(
            policy, base, reward_model, panel, EVAL_PROMPTS, PROBE, PARAMS
        )
        rows.append({"checkpoint": name, **metrics,
                     GENERATIONS_COLUMN: generations_to_json(generations)})  # fmt: skip
    history = pd.DataFrame(rows)
    stamped = stamp_history(history, {"base_policy": base, "round_001": moved}, protocol)
    return stamped, panel


def test_the_stage_reuses_what_matches_and_evaluates_the_rest(setting, monkeypatch, tmp_path):
    base, moved, reward_model = setting
    protocol = _protocol(base, reward_model)
    history, panel = _stamped_history(base, moved, reward_model, protocol)
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
    fresh, _ = compare_stages(policies, reward_model, panel, EVAL_PROMPTS, PROBE, PARAMS, 2)

    evaluated = []
    evaluate = compare_module.evaluate_policy
    monkeypatch.setattr(compare_module, "evaluate_policy",
                        lambda policy, *a, **k: evaluated.append(policy) or evaluate(policy, *a, **k))  # fmt: skip
    reused, _ = compare_stages(
        policies, reward_model, panel, EVAL_PROMPTS, PROBE, PARAMS, 2,
        reusable_evaluations(history, protocol),
    )  # fmt: skip
    assert evaluated == [policies["dpo"]]  # base and ppo came from the history
    pd.testing.assert_frame_equal(reused, fresh)

    evaluated.clear()
    compare_stages(policies, reward_model, panel, EVAL_PROMPTS, PROBE, PARAMS, 2,
                   reusable_evaluations(history, _protocol(base, reward_model, params={"seed": 9})))  # fmt: skip
    assert len(evaluated) == 3  # another protocol: nothing is reused


def test_a_history_without_the_columns_offers_nothing():
    assert (
        reusable_evaluations(pd.DataFrame({"round": [0], "checkpoint": ["base_policy"]}), "p") == {}
    )


def test_a_damaged_stored_evaluation_is_evaluated_again_not_reused(setting, caplog):
    base, moved, reward_model = setting
    protocol = _protocol(base, reward_model)
    history, _ = _stamped_history(base, moved, reward_model, protocol)
    history.loc[0, GENERATIONS_COLUMN] = '{"texts": ["cut'  # a truncated write
    history.loc[1, GENERATIONS_COLUMN] = '{"texts": []}'  # fields missing
    assert reusable_evaluations(history, protocol) == {}
    assert caplog.text.count("unreadable") == 2 and "base_policy" in caplog.text
