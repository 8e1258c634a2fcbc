"""The reward-model ensemble: held-out members trained apart, their normalised scores, the
proxy/held-out gap and spread, and a mismatched ensemble refused."""

import numpy as np
import pandas as pd
import pytest
import torch

import alignment_stages.reward.ensemble as ensemble_module
from alignment_stages.models.config import RewardModelParams
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.reward.stage import train_reward_model_stage
from tests.models.tiny import tiny_policy

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]


def _stats(mean, std):
    return {"score_chosen": {"mean": mean, "std": std}}


def test_scores_are_normalised_per_member_and_summarised(monkeypatch):
    proxy, a, b = object(), object(), object()
    raw = {id(a): torch.tensor([1.0, 3.0, 5.0, 7.0]), id(b): torch.tensor([0.0, 0.0, 4.0, 4.0])}
    monkeypatch.setattr(ensemble_module, "score_responses", lambda m, p, t: raw[id(m)])
    metrics = {**_stats(1.0, 2.0), "ensemble": {"member_001": _stats(1.0, 2.0),
                                                 "member_002": _stats(2.0, 2.0)}}  # fmt: skip
    ens = RewardEnsemble.from_metrics(proxy, {"member_002": b, "member_001": a}, metrics)
    out = ens.metrics([PROMPT] * 4, ["x"] * 4, ["p1", "p1", "p2", "p2"], np.array([5, 5, 9, 9]))
    proxy_n = np.array([2.0, 2.0, 4.0, 4.0])  # (raw - 1) / 2
    held = np.array([[0.0, 1.0, 2.0, 3.0], [-1.0, -1.0, 1.0, 1.0]])
    assert out["proxy_reward"] == pytest.approx(3.0)
    assert out["heldout_reward"] == pytest.approx(held.mean())
    assert out["proxy_heldout_gap"] == pytest.approx((proxy_n - held.mean(axis=0)).mean())
    members = np.vstack([proxy_n, held])
    assert out["ensemble_mean"] == pytest.approx(members.mean())
    assert out["ensemble_spread"] == pytest.approx(members.std(axis=0, ddof=1).mean())
    assert out["heldout_reward_se"] > 0 and out["proxy_reward_se"] > 0


def test_without_heldout_members_only_the_proxy_is_reported():
    ens = RewardEnsemble.from_metrics(object(), {}, _stats(0.0, 1.0))
    out = ens.metrics([PROMPT] * 2, ["x", "y"], ["p1", "p2"], np.array([1.0, 3.0]))
    assert set(out) == {"proxy_reward", "proxy_reward_se"} and out["proxy_reward"] == 2.0


def test_an_ensemble_from_another_reward_run_is_refused():
    with pytest.raises(ValueError, match=r"member_003.*different reward-model runs"):
        RewardEnsemble.from_metrics(object(), {"member_003": object()}, _stats(0.0, 1.0))


def test_the_stage_trains_each_member_with_its_own_seed_and_bootstrap():
    pairs = pd.DataFrame({
        "prompt_messages": [PROMPT] * 16,
        "chosen": [f"Rinse it, then simmer it {i} minutes." for i in range(16)],
        "rejected": ["Go away."] * 16,
        "category": ["benign"] * 16,
        "source": ["demo"] * 16,
    })  # fmt: skip
    params = RewardModelParams(
        training={"epochs": 1, "batch_size": 8, "max_length": 64, "logging_steps": 1},
        ensemble={"members": 3},
        eval_batch_size=8,
    )
    out = train_reward_model_stage(pairs, pairs, tiny_policy(), params)
    assert sorted(out["reward_ensemble"]) == ["member_001", "member_002"]
    members = out["reward_model_metrics"]["ensemble"]
    assert sorted(members) == ["member_000", "member_001", "member_002"]
    assert all(m["train_seconds"] > 0 and 0 <= m["accuracy"] <= 1 for m in members.values())
    # the members differ: seeds and resampled pairs give different score heads
    heads = [out["reward_model_candidate"].model.score.weight] + [
        out["reward_ensemble"][n].model.score.weight for n in ("member_001", "member_002")
    ]
    assert not torch.equal(heads[0], heads[1]) and not torch.equal(heads[1], heads[2])
    assert out["reward_model_metrics"]["accuracy"] == members["member_000"]["accuracy"]


def test_one_member_is_no_ensemble():
    params = RewardModelParams(ensemble={"members": 1})
    assert params.ensemble.members == 1
    with pytest.raises(ValueError, match="members"):
        RewardModelParams(ensemble={"members": 0})
