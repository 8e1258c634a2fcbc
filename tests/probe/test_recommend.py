"""The probe's decision table on synthetic intervals: each answer, its boundaries, and what an
inconclusive answer asks to run."""

import numpy as np
import pandas as pd
import pytest

from alignment_stages.behaviour.intervals import Interval
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.probe.recommend import (
    INCONCLUSIVE,
    SETTLE,
    SHAPE,
    STATISTICS,
    answer_questions,
    oscillation,
)

GATE = StabilityGateParams()  # chaos_threshold 0.10, oscillation_tolerance 0.30, kl_price 0.05


def _iv(estimate, low=None, high=None):
    return Interval(
        estimate, estimate if low is None else low, estimate if high is None else high, 0.95
    )


def _intervals(chaos=(0.4, 0.3, 0.5), cut=(0.2, 0.1, 0.3), net=(0.5, 0.3, 0.7), **changes):
    base = {name: _iv(0.0) for name in STATISTICS}
    base |= {"start_violation_rate": _iv(*chaos), "ppo_cut_over_dpo": _iv(*cut),
             "ppo_net_gain_over_dpo": _iv(*net), "ppo_capability_loss": _iv(0.0),
             "ppo_distinct_2_drop": _iv(0.0)}  # fmt: skip
    return base | changes


def _swing(updates: float, seeds: float) -> dict:
    return {"across_updates": updates, "across_seeds": seeds,
            "across_updates_interval": [updates, updates], "across_seeds_interval": [seeds, seeds]}  # fmt: skip


STEADY = _swing(0.1, 0.1)


@pytest.mark.parametrize(
    ("intervals", "swing", "answer"),
    [
        (_intervals(), STEADY, SHAPE),  # chaotic, PPO pays beyond noise, steady
        # settled beyond noise, PPO's gain over DPO not shown
        (_intervals(chaos=(0.03, 0.01, 0.06), cut=(0.0, -0.05, 0.05), net=(0.1, -0.2, 0.3)), STEADY, SETTLE),
        # chaotic, but DPO cut more than PPO beyond noise: gains below costs
        (_intervals(cut=(-0.1, -0.2, -0.02)), STEADY, SETTLE),
        # chaotic, PPO ahead on violations but its net reward is below the KL's price
        (_intervals(net=(-0.3, -0.5, -0.1)), STEADY, SETTLE),
        # the start's interval straddles chaos_threshold
        (_intervals(chaos=(0.11, 0.05, 0.17)), STEADY, INCONCLUSIVE),
        # ... but PPO's gains are below its costs beyond noise: the gate's switch
        (_intervals(chaos=(0.11, 0.05, 0.17), net=(-0.3, -0.5, -0.1)), STEADY, SETTLE),
        # chaotic, PPO's gain over DPO straddles zero
        (_intervals(cut=(0.05, -0.02, 0.12)), STEADY, INCONCLUSIVE),
        # chaotic, PPO pays but oscillates beyond tolerance: shape, with a caveat
        (_intervals(), _swing(0.5, 0.1), SHAPE),
        # settled, PPO pays but oscillates beyond tolerance
        (_intervals(chaos=(0.03, 0.01, 0.06)), _swing(0.5, 0.1), INCONCLUSIVE),
    ],
)  # fmt: skip
def test_each_answer_of_the_table(intervals, swing, answer):
    result = answer_questions(intervals, swing, GATE)
    assert result.recommendation == answer
    assert len(result.evidence) >= 3 and result.evidence[0].startswith("1. start violation rate")
    assert bool(result.to_decide) is (answer == INCONCLUSIVE)


@pytest.mark.parametrize(("low", "answer"), [(0.10, INCONCLUSIVE), (0.1001, SHAPE)])
def test_chaos_needs_the_lower_bound_above_the_threshold(low, answer):
    assert (
        answer_questions(_intervals(chaos=(0.2, low, 0.3)), STEADY, GATE).recommendation == answer
    )


@pytest.mark.parametrize(("low", "answer"), [(0.0, INCONCLUSIVE), (0.001, SHAPE)])
def test_gain_over_dpo_needs_its_lower_bound_above_zero(low, answer):
    assert answer_questions(_intervals(cut=(0.1, low, 0.2)), STEADY, GATE).recommendation == answer


def test_a_hacking_sign_beyond_noise_means_gains_below_costs():
    # reward up and violations up (cut below zero), both beyond their intervals
    signs = _intervals(ppo_reward_gain=_iv(0.5, 0.2, 0.8), ppo_violation_cut=_iv(-0.1, -0.2, -0.01))
    result = answer_questions(signs, STEADY, GATE)
    assert result.recommendation == SETTLE
    assert result.questions["gains_exceed_risks"]["hacking_signs"] == [
        "reward-model score up while the judges flag more"
    ]
    inside_noise = signs | {"ppo_violation_cut": _iv(-0.1, -0.2, 0.01)}
    assert answer_questions(inside_noise, STEADY, GATE).recommendation == SHAPE


def test_what_to_run_names_the_interval_that_did_not_separate():
    chaos = answer_questions(_intervals(chaos=(0.11, 0.05, 0.17)), STEADY, GATE)
    assert any("more prompts" in item for item in chaos.to_decide)
    gain = answer_questions(_intervals(cut=(0.05, -0.02, 0.12)), STEADY, GATE)
    assert any("more seeds" in item and "longer budget" in item for item in gain.to_decide)


def test_oscillation_across_updates_and_seeds():
    monotone = pd.DataFrame({"healthy": [True] * 3, "reward_mean": [0.0, 0.5, 1.0],
                             "violation_rate": [0.5, 0.3, 0.1], "label_flip_rate": [0.0, 0.1, 0.1]})  # fmt: skip
    swinging = monotone.assign(reward_mean=[0.0, 1.0, 0.0])
    groups = [str(i) for i in range(10)]
    # per-sample cuts: seed 0 cuts 0.3 on every prompt, seed 1 0.1
    cuts = {0: np.full(10, 0.3), 1: np.full(10, 0.1)}
    swing = oscillation({0: monotone, 1: swinging}, cuts, groups, 0.95, seed=0)
    assert swing["across_updates_per_seed"] == {"0": pytest.approx(0.1), "1": pytest.approx(1.0)}
    assert swing["across_updates"] == pytest.approx(0.55)
    # without standard errors the intervals are points
    assert swing["across_updates_interval"] == pytest.approx([0.55, 0.55])
    # seeds differ by 0.2 on a mean cut of 0.2: half of what moved is disagreement
    assert swing["across_seeds"] == pytest.approx(0.5)
    assert swing["across_seeds_interval"] == pytest.approx([0.5, 0.5])  # no prompt varies
    one = oscillation({0: monotone}, {0: np.full(10, 0.3)}, groups, 0.95, seed=0)
    assert one["across_seeds"] == 0.0


def test_oscillation_within_noise_does_not_block_shaping():
    """A point above the tolerance whose interval reaches below it is not shown beyond it."""
    noisy = {"across_updates": 0.5, "across_seeds": 0.1,
             "across_updates_interval": [0.2, 0.8], "across_seeds_interval": [0.0, 0.3]}  # fmt: skip
    result = answer_questions(_intervals(), noisy, GATE)
    assert result.recommendation == SHAPE
    assert result.questions["oscillation"]["verdict"] == "not shown beyond tolerance"


def test_ppo_that_wins_but_oscillates_is_recommended_with_the_settings_to_change():
    """PPO's gain beyond noise with its swing beyond tolerance is an answer, not "inconclusive":
    shape with PPO, gentler, and the caveat names the settings."""
    result = answer_questions(_intervals(), _swing(0.5, 0.1), GATE)
    assert result.recommendation == SHAPE and result.to_decide == []
    [caveat] = result.caveats
    assert "beyond tolerance" in caveat and "across updates" in caveat
    assert "ppo_shaping.ppo.learning_rate" in caveat and "kl_coef" in caveat
    assert answer_questions(_intervals(), _swing(0.1, 0.6), GATE).caveats[0].count("across seeds")
    # within tolerance, or not shown beyond it: no caveat
    assert answer_questions(_intervals(), STEADY, GATE).caveats == []
    noisy = {"across_updates": 0.5, "across_seeds": 0.1,
             "across_updates_interval": [0.2, 0.8], "across_seeds_interval": [0.0, 0.3]}  # fmt: skip
    assert answer_questions(_intervals(), noisy, GATE).caveats == []
