"""DPO's pairs follow PPO's prompts: the sampled category mix is `ppo_prompts`' mix."""

import pandas as pd
import pytest

from alignment_stages.probe.short_runs import sample_pairs_like


def _pairs(n_unsafe: int, n_benign: int) -> pd.DataFrame:
    categories = ["unsafe"] * n_unsafe + ["benign"] * n_benign
    return pd.DataFrame({"pair_id": range(len(categories)), "category": categories})


def test_pairs_follow_the_category_mix_of_ppo_prompts():
    pairs = _pairs(800, 200)  # 80% unsafe among the pairs
    prompts = pd.DataFrame({"category": ["unsafe"] * 30 + ["benign"] * 70})  # 30% among prompts
    sample = sample_pairs_like(pairs, prompts, 200, seed=0)
    assert len(sample) == 200 and sample["pair_id"].is_unique
    assert (sample["category"] == "unsafe").mean() == pytest.approx(0.3)  # not the pairs' 0.8
    # 700 benign pairs asked for, 200 exist: both categories shrink, the mix stays
    capped = sample_pairs_like(pairs, prompts, 1000, seed=0)
    assert (capped["category"] == "benign").sum() == 200
    assert (capped["category"] == "unsafe").mean() == pytest.approx(0.3, abs=0.01)
    assert sample_pairs_like(pairs, prompts, 200, seed=0).equals(sample)  # seeded


def test_categories_ppo_never_sees_are_left_out_and_the_sample_is_capped():
    pairs = pd.concat([_pairs(50, 50), pd.DataFrame({"pair_id": [999], "category": ["other"]})])
    prompts = pd.DataFrame({"category": ["unsafe", "benign"]})
    sample = sample_pairs_like(pairs, prompts, 10_000, seed=1)
    assert len(sample) == 100 and "other" not in set(sample["category"])
    assert len(sample_pairs_like(pairs, prompts, 40, seed=1)) == 40


def test_no_shared_category_is_a_clear_error():
    with pytest.raises(ValueError, match="shares no prompt category"):
        sample_pairs_like(_pairs(5, 0), pd.DataFrame({"category": ["benign"]}), 4, seed=0)


def _short_ppo(max_approx_kl: float):
    from alignment_stages.probe.config import StageProbeParams
    from alignment_stages.probe.short_runs import run_short_ppo
    from alignment_stages.reward.train import reward_model_from_policy
    from tests.models.tiny import tiny_policy
    from tests.ppo.round_inputs import METRICS, TABLE, eval_protocol

    params = StageProbeParams(
        seeds=[0], updates=3,
        ppo={"ppo": {"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 2,
                     "learning_rate": 1e-3, "max_approx_kl": max_approx_kl},
             "eval": {"max_new_tokens": 4, "batch_size": 8}},
    )  # fmt: skip
    start = tiny_policy()
    reward_model = reward_model_from_policy(start)
    protocol = eval_protocol(start, reward_model, params.ppo.eval)
    return start, run_short_ppo(start, reward_model, METRICS, TABLE, protocol, params, seed=0)


def test_a_probe_ppo_run_stops_at_the_approx_kl_ceiling_as_a_shaping_run_does():
    """The probe trains through the shaping rounds' own update loop, so `max_approx_kl` ("above
    it the run stops") holds there too: the first update passes a 1e-12 ceiling, the run stops
    after it, and the output is the start, not the diverged update."""
    start, stopped = _short_ppo(max_approx_kl=1e-12)
    assert stopped.history["healthy"].tolist() == [True, False]
    assert "above max_approx_kl=1e-12" in stopped.history["stop_reason"].iloc[-1]
    assert stopped.policy is start and stopped.optimizer_steps == 0
    # the same settings under the default ceiling run every update
    _, full = _short_ppo(max_approx_kl=4.0)
    assert full.history["healthy"].tolist() == [True] * 4
    assert full.optimizer_steps == 3 * 4 * 2  # updates × ppo_epochs × num_minibatches
