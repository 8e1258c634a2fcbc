"""Rounds: history, guards that keep the last healthy round, and the early stop on small gains."""

import json

import pandas as pd
import pytest
import torch

import alignment_stages.ppo.rounds as rounds
from alignment_stages.ppo.penalties import _prompt_key, judge_penalty_fn
from alignment_stages.ppo.prompt_cycles import cycle_prompts
from alignment_stages.reward.train import reward_model_from_policy
from alignment_stages.stages.ppo_shaping import ShapingStageParams
from tests.models.tiny import tiny_policy
from tests.ppo.round_inputs import JUDGES, TABLE, shaping_inputs


def _params(**overrides) -> ShapingStageParams:
    base = {
        "rounds": 3, "updates_per_round": 1,
        "ppo": {"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 2, "learning_rate": 1e-3},
        "eval": {"max_new_tokens": 4, "batch_size": 8},
    }  # fmt: skip
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) and key in base else value
    return ShapingStageParams(**base)


def _run(params, monkeypatch=None, scores=None):
    policy = tiny_policy()
    if scores is not None:
        monkeypatch.setattr(rounds, "score_responses", scores)
    reward_model = reward_model_from_policy(policy)
    result = rounds.run_shaping_rounds(
        shaping_inputs(policy, reward_model, params), params,
    )  # fmt: skip
    return policy, result


def test_every_round_is_evaluated_and_checkpointed():
    policy, result = _run(_params())
    assert result.ppo_history["round"].tolist() == [0, 1, 2, 3]
    assert list(result.round_policies) == ["round_001", "round_002", "round_003"]
    assert result.ppo_policy is result.round_policies["round_003"]
    assert result.ppo_history["healthy"].all()


def test_on_update_gets_every_update_numbered_across_rounds():
    """The live-tracking callback: one call per update, step = the update's number in the run."""
    policy = tiny_policy()
    calls = []
    params = _params(rounds=2, updates_per_round=2)
    reward_model = reward_model_from_policy(policy)
    result = rounds.run_shaping_rounds(
        shaping_inputs(policy, reward_model, params), params,
        on_update=lambda step, stats: calls.append((step, stats)),
    )  # fmt: skip
    assert [step for step, _ in calls] == [1, 2, 3, 4]
    assert {"ppo/kl", "ppo/reward", "ppo/clipfrac", "ppo/value_loss"} <= set(calls[0][1])
    mean_kl = (calls[0][1]["ppo/kl"] + calls[1][1]["ppo/kl"]) / 2
    assert result.ppo_history.loc[1, "ppo/kl"] == pytest.approx(mean_kl)


def test_approx_kl_above_the_ceiling_stops_and_keeps_the_last_healthy_round():
    policy, result = _run(_params(ppo={"max_approx_kl": 1e-12}))
    history = result.ppo_history
    assert history["healthy"].tolist() == [True, False]
    assert "max_approx_kl" in history.iloc[-1]["stop_reason"]
    assert result.round_policies == {} and result.ppo_policy is policy  # nothing diverged is kept
    assert "kept round 0" in result.stop_reason


def test_non_finite_rewards_stop_the_run_without_saving_the_diverged_policy(monkeypatch):
    calls = {"n": 0}

    def score(reward_model, prompts, texts, *args, **kwargs):
        calls["n"] += 1
        return torch.full((len(texts),), float("nan") if calls["n"] > 2 else 0.0)

    policy, result = _run(_params(), monkeypatch, scores=score)
    assert result.ppo_history["healthy"].tolist()[-1] is False
    assert "nan" in result.ppo_history.iloc[-1]["stop_reason"]
    assert all(name < f"round_{len(result.ppo_history) - 1:03d}" for name in result.round_policies)


def test_early_stop_when_a_round_gains_less_than_the_threshold():
    policy, result = _run(_params(early_stop_min_gain=1e9))
    assert result.ppo_history["round"].tolist() == [0, 1, 2]
    assert "early_stop_min_gain" in result.stop_reason


@pytest.mark.parametrize(
    "bad",
    [
        {"rounds": 0},
        {"ppo": {"rollout_batch_size": 6, "num_minibatches": 4}},
        {"algorithm": "a2c"},
        {"ppo": {"clip_rnage": 0.1}},
    ],
)
def test_bad_ppo_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        _params(**bad)


def test_lora_round_snapshots_share_the_base_weights_and_keep_their_own_adapters():
    policy, result = _run(_params(lora={"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0}))
    first, last = (result.round_policies[name].model for name in ("round_001", "round_003"))

    def tensors(model, trainable):
        return {n: p for n, p in model.named_parameters() if p.requires_grad == trainable}

    base_first, base_last = tensors(first, False), tensors(last, False)
    assert base_first and base_first.keys() == base_last.keys()
    # one copy of the frozen base for every round (and the input policy's own weights)
    assert all(base_first[n].data_ptr() == base_last[n].data_ptr() for n in base_first)
    inputs = {p.data_ptr() for p in policy.model.parameters()}
    assert {p.data_ptr() for p in base_first.values()} <= inputs
    # each round's adapter is its own: rounds 1 and 3 differ after two more rounds of training
    adapters_first, adapters_last = tensors(first, True), tensors(last, True)
    assert adapters_first and adapters_first.keys() == adapters_last.keys()
    assert all(adapters_first[n].data_ptr() != adapters_last[n].data_ptr() for n in adapters_first)
    assert any(not torch.equal(adapters_first[n], adapters_last[n]) for n in adapters_first)


def test_judge_penalty_falls_on_flagged_rollouts_only():
    prompts = TABLE["prompt_messages"].tolist()[:3]
    texts = ["Simmer it.", "go away", "Rinse it."]  # JUDGES flags "go away" on benign prompts
    penalty = judge_penalty_fn(JUDGES, TABLE, judge_penalty=2.0)
    assert penalty(prompts, texts).tolist() == [0.0, 2.0, 0.0]
    assert judge_penalty_fn(JUDGES, TABLE, judge_penalty=0.0) is None


def test_a_negative_judge_penalty_is_refused():
    with pytest.raises(ValueError, match="judge_penalty"):
        _params(ppo={"judge_penalty": -1.0})


@pytest.mark.parametrize("weight", [0.0, -0.5])
def test_a_reward_model_weight_that_is_not_positive_is_refused(weight):
    with pytest.raises(ValueError, match="reward_model_weight"):
        _params(ppo={"reward_model_weight": weight})


def test_a_kl_horizon_that_would_turn_beta_negative_is_refused():
    with pytest.raises(ValueError, match="kl_horizon 4 is too short for rollout_batch_size 32"):
        _params(ppo={"rollout_batch_size": 32, "kl_horizon": 4})
    _params(ppo={"rollout_batch_size": 32, "kl_horizon": 4, "kl_control": "fixed"})


def test_rloo_needs_groups_of_at_least_two_that_fill_the_batch():
    with pytest.raises(ValueError, match="rloo' needs samples_per_prompt >= 2"):
        _params(ppo={"advantage_estimator": "rloo"})
    with pytest.raises(
        ValueError, match="rollout_batch_size 4 must be a multiple of samples_per_prompt 3"
    ):
        _params(ppo={"samples_per_prompt": 3})


def test_cycle_prompts_answers_each_prompt_samples_per_prompt_times_in_a_row():
    batches = cycle_prompts(TABLE, batch_size=6, seed=0, samples_per_prompt=3)
    seen = []
    for _ in range(len(TABLE)):  # two prompts per batch: every prompt within a pass and a half
        batch = next(batches)
        assert len(batch) == 6
        assert batch[0] == batch[1] == batch[2] and batch[3] == batch[4] == batch[5]
        seen += [_prompt_key(batch[0]), _prompt_key(batch[3])]
    assert len(set(seen)) == len(TABLE)


def test_rloo_rounds_run_and_record_no_critic_statistics():
    policy, result = _run(
        _params(ppo={"samples_per_prompt": 2, "advantage_estimator": "rloo"}, rounds=2)
    )
    history = result.ppo_history
    assert history["healthy"].all() and len(history) == 3
    assert history["ppo/clipfrac"].iloc[1:].notna().all()
    assert not any(column.startswith("ppo/value") for column in history.columns)


MIXED = pd.DataFrame(
    {
        "prompt_id": [f"m{i}" for i in range(16)],
        "prompt_messages": [[{"role": "user", "content": f"Question {i}?"}] for i in range(16)],
        # 10 benign, 4 unsafe, 2 unknown: a uniform draw would be 62% benign
        "category": ["benign"] * 10 + ["unsafe"] * 4 + ["unknown"] * 2,
    }
)
CATEGORY_OF = {
    (("user", m[0]["content"]),): c
    for m, c in zip(MIXED["prompt_messages"], MIXED["category"], strict=True)
}


def _mixed_batches(seed: int = 0):
    return cycle_prompts(
        MIXED, batch_size=8, seed=seed, samples_per_prompt=2,
        category_mix={"unsafe": 0.5, "benign": 0.5},
    )  # fmt: skip


def test_category_mix_holds_every_batch_at_its_shares_in_whole_groups():
    batches = _mixed_batches()
    drawn = {"unsafe": [], "benign": []}
    for _ in range(5):
        batch = next(batches)
        assert len(batch) == 8
        groups = [batch[i : i + 2] for i in range(0, 8, 2)]
        assert all(a == b for a, b in groups)  # each prompt's samples stay consecutive
        categories = [CATEGORY_OF[_prompt_key(a)] for a, _ in groups]
        assert sorted(categories) == ["benign", "benign", "unsafe", "unsafe"]
        for (a, _), category in zip(groups, categories, strict=True):
            drawn[category].append(_prompt_key(a))
    # one category's pass ends before any of its prompts repeats; unknown is never drawn
    assert len(set(drawn["unsafe"][:4])) == 4 and len(set(drawn["benign"][:10])) == 10
    # the groups are interleaved, so a minibatch is not one category
    firsts = [CATEGORY_OF[_prompt_key(next(batches)[0])] for _ in range(20)]
    assert set(firsts) == {"unsafe", "benign"}


def test_category_mix_resumes_where_its_state_was_saved():
    batches = _mixed_batches(seed=3)
    next(batches)
    state = json.loads(json.dumps(batches.state()))  # as a round checkpoint stores it
    expected = [next(batches) for _ in range(4)]
    resumed = _mixed_batches(seed=99)
    resumed.restore(state)
    assert [next(resumed) for _ in range(4)] == expected


@pytest.mark.parametrize(
    ("mix", "message"),
    [
        ({"unsafe": 0.7, "benign": 0.5}, "shares must sum to 1, got 1.2"),
        ({"unsafe": -0.5, "benign": 1.5}, "no negative share"),
        ({"unsafe": 0.05, "benign": 0.95}, r"gives \['unsafe'\] no prompt in a batch of 4"),
    ],
)
def test_bad_category_mix_is_refused_with_the_reason(mix, message):
    with pytest.raises(ValueError, match=message):
        _params(ppo={"category_mix": mix})


def test_category_mix_naming_a_category_the_prompts_lack_is_a_clear_error():
    with pytest.raises(ValueError, match=r"asks for \['unsafe'\], but ppo_prompts has no prompt"):
        cycle_prompts(TABLE, batch_size=4, seed=0, category_mix={"unsafe": 0.5, "benign": 0.5})


def test_rounds_train_on_a_category_mix():
    table = MIXED.iloc[:14].reset_index(drop=True)
    policy = tiny_policy()
    params = _params(ppo={"category_mix": {"unsafe": 0.5, "benign": 0.5}}, rounds=1)
    reward_model = reward_model_from_policy(policy)
    result = rounds.run_shaping_rounds(
        shaping_inputs(policy, reward_model, params, table), params,
    )  # fmt: skip
    assert result.ppo_history["healthy"].all() and len(result.ppo_history) == 2


class _WordTokenizer:
    """One token per word, plus two for the template: enough to count prompt lengths."""

    def apply_chat_template(self, messages, add_generation_prompt, tokenize, return_dict):
        assert add_generation_prompt and tokenize and return_dict
        return {"input_ids": [0, 0] + [1 for m in messages for _ in m["content"].split()]}


def test_prompts_over_the_token_budget_are_left_out_whole_and_counted(caplog):
    from alignment_stages.ppo.prompt_cycles import within_prompt_budget

    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": " ".join(["w"] * n)}] for n in (3, 8, 9)],
        "category": ["unsafe", "benign", "benign"],
    })  # fmt: skip
    with caplog.at_level("INFO"):
        kept = within_prompt_budget(prompts, _WordTokenizer(), max_tokens=10)
    assert [len(m[0]["content"].split()) for m in kept["prompt_messages"]] == [3, 8]
    assert "leaves out 1 of 3 ppo_prompts {'benign': 1}" in caplog.text
    assert within_prompt_budget(prompts, _WordTokenizer(), None) is prompts
    with pytest.raises(ValueError, match="no ppo_prompt fits ppo.max_prompt_tokens=4"):
        within_prompt_budget(prompts, _WordTokenizer(), max_tokens=4)
