"""Every branch of the gate on synthetic histories, threshold boundaries, one round, NaN."""

import math

import pandas as pd
import pytest

from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.gate.report import render_gate_report
from alignment_stages.gate.rules import GateInputError, decide, reversal_share

PARAMS = StabilityGateParams()


def _row(
    round_, reward, violation, kl=None, ppl=1.30, distinct=0.40, length=20.0, eos=0.90, flips=0.05
):
    return {
        "round": round_, "checkpoint": "base_policy" if round_ == 0 else f"round_{round_:03d}", "healthy": True,
        "reward_mean": reward, "violation_rate": violation, "kl_to_base": round_ * 1.0 if kl is None else kl,
        "probe_perplexity": ppl, "distinct_2": distinct, "length_mean": length, "eos_rate": eos,
        "label_flip_rate": 0.0 if round_ == 0 else flips,
    }  # fmt: skip


def _history(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


SETTLED = _history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.05), _row(3, 1.6, 0.02))
STILL_GAINING = _history(
    _row(0, 0.0, 0.50), _row(1, 0.5, 0.40), _row(2, 1.0, 0.30), _row(3, 1.5, 0.20)
)
STALLED_CHAOTIC = _history(
    _row(0, 0.0, 0.50), _row(1, 0.50, 0.40), _row(2, 0.52, 0.39), _row(3, 0.53, 0.38)
)
OSCILLATING = _history(
    _row(0, 0.0, 0.50), _row(1, 1.0, 0.20), _row(2, 0.2, 0.45), _row(3, 1.1, 0.18)
)
HACKED = _history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.20), _row(3, 2.0, 0.25))


@pytest.mark.parametrize(
    ("history", "decision", "selected"),
    [
        (SETTLED, "switch_to_refinement", 3),
        (STILL_GAINING, "continue_shaping", 3),
        (STALLED_CHAOTIC, "switch_to_refinement", 3),  # chaotic, but gains below costs
        (OSCILLATING, "halt", 3),
        (HACKED, "rollback_and_switch", 1),  # reward up while judges flag more from round 2 on
    ],
)
def test_each_decision_of_the_table(history, decision, selected):
    result = decide(history, PARAMS, checkpoint_version="2026-01-01T00.00.00.000Z")
    assert result.decision == decision
    assert result.selected_round == selected
    assert result.reasons and result.checkpoint_version == "2026-01-01T00.00.00.000Z"
    report = render_gate_report(result, history)
    assert f"`{decision}`" in report and "| chaos_rate |" in report


@pytest.mark.parametrize(("violation", "chaotic"), [(0.10, False), (0.1001, True)])
def test_chaos_threshold_boundary_is_exclusive(violation, chaotic):
    history = _history(_row(0, 0.0, 0.5), _row(1, 1.0, violation))
    signal = {s.name: s for s in decide(history, PARAMS).signals}["chaos_rate"]
    assert signal.triggered is chaotic and signal.value == pytest.approx(violation)


@pytest.mark.parametrize(("gain", "paying"), [(0.25, False), (0.2501, True)])
def test_gain_boundary_against_min_gain(gain, paying):
    # KL unchanged, so the price is min_gain_per_round (0.25: exact in binary floating point).
    history = _history(
        _row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=1.0), _row(2, 1.0 + gain, 0.35, kl=1.0)
    )
    result = decide(history, PARAMS.model_copy(update={"min_gain_per_round": 0.25}))
    assert (result.decision == "continue_shaping") is paying


def test_kl_growth_raises_the_price_of_a_gain():
    cheap = _history(
        _row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=1.0), _row(2, 1.5, 0.35, kl=2.0)
    )
    dear = _history(
        _row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=1.0), _row(2, 1.5, 0.35, kl=20.0)
    )
    assert decide(cheap, PARAMS).decision == "continue_shaping"  # price 0.05 < gain 0.5
    assert decide(dear, PARAMS).decision == "switch_to_refinement"  # price 0.95 > gain 0.5


@pytest.mark.parametrize(
    ("change", "sign"),
    [
        ({"ppl": 1.30 * 1.26}, "capability loss"),
        ({"length": 31.0}, "length drift"),
        ({"distinct": 0.19}, "diversity collapse"),
        ({"eos": 0.55}, "EOS rate fell"),
    ],
)
def test_each_hacking_and_capability_sign_rolls_back(change, sign):
    history = _history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.05, **change))
    result = decide(history, PARAMS)
    assert result.decision == "rollback_and_switch" and result.selected_round == 1
    assert sign in " ".join(result.hacking_signs["round_002"])


def test_capability_boundary_is_exclusive():
    at_limit = _history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.05, ppl=1.30 * 1.25))
    assert decide(at_limit, PARAMS).decision == "switch_to_refinement"


def test_oscillation_boundary_and_tolerance_parameter():
    # Violation path 0.5 → 0.25 → 0.375: reversal share 0.25 / 0.375 = 2/3 (exact halves).
    history = _history(
        _row(0, 0.0, 0.50), _row(1, 1.0, 0.25, flips=0.0), _row(2, 1.0, 0.375, flips=0.0)
    )
    assert (
        decide(history, PARAMS.model_copy(update={"oscillation_tolerance": 2 / 3})).decision
        != "halt"
    )
    assert (
        decide(history, PARAMS.model_copy(update={"oscillation_tolerance": 0.66})).decision
        == "halt"
    )


def test_history_with_only_the_starting_policy():
    chaotic = decide(_history(_row(0, 0.0, 0.5)), PARAMS)
    settled = decide(_history(_row(0, 0.0, 0.05)), PARAMS)
    assert chaotic.decision == "continue_shaping" and math.isinf(chaotic.signals[2].value)
    assert (
        settled.decision == "switch_to_refinement" and settled.selected_checkpoint == "base_policy"
    )


def test_history_with_one_ppo_round():
    result = decide(_history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.30)), PARAMS)
    assert result.decision == "continue_shaping" and result.selected_round == 1


def test_diverged_round_rolls_back_to_the_last_healthy_one():
    history = _history(_row(0, 0.0, 0.45), _row(1, 1.0, 0.15))
    history = pd.concat(
        [history, pd.DataFrame([{"round": 2, "checkpoint": None, "healthy": False}])],
        ignore_index=True,
    )
    result = decide(history, PARAMS)
    assert result.decision == "rollback_and_switch" and result.selected_round == 1
    assert any("diverged" in reason for reason in result.reasons)


def test_nan_in_history_is_a_clear_error_not_a_silent_pass():
    history = _history(_row(0, 0.0, 0.45), _row(1, float("nan"), 0.15))
    with pytest.raises(GateInputError, match="NaN .*round 1: reward_mean"):
        decide(history, PARAMS)


def test_missing_columns_and_missing_round_zero_are_errors():
    with pytest.raises(GateInputError, match="lacks the columns"):
        decide(_history(_row(0, 0.0, 0.4)).drop(columns=["eos_rate"]), PARAMS)
    with pytest.raises(GateInputError, match="start with round 0"):
        decide(_history(_row(1, 0.0, 0.4)), PARAMS)


def test_reversal_share_by_hand():
    assert reversal_share([0.0, 1.0, 2.0]) == 0.0
    assert reversal_share([0.0, 1.0, 0.0]) == 1.0
    assert reversal_share([0.5, 0.2, 0.35]) == pytest.approx(0.3 / 0.45)
    assert reversal_share([1.0, 1.0]) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"chaos_threshold": 1.5},
        {"oscillation_window": 1},
        {"on_unsettled": "maybe"},
        {"chaos_treshold": 0.1},
    ],
)
def test_bad_gate_parameters_are_rejected(bad):
    with pytest.raises(ValueError):
        StabilityGateParams(**bad)


def _ensemble_row(round_, proxy, heldout, spread, violation=0.40, se=0.0):
    return {**_row(round_, proxy, violation), "proxy_reward": proxy, "heldout_reward": heldout,
            "ensemble_spread": spread, "proxy_reward_se": se, "heldout_reward_se": se,
            "ensemble_spread_se": se}  # fmt: skip


def test_proxy_up_while_the_heldout_ensemble_falls_rolls_back_to_the_round_before():
    history = _history(_ensemble_row(0, 0.0, 0.0, 0.2), _ensemble_row(1, 1.0, 0.8, 0.3),
                       _ensemble_row(2, 2.0, 0.2, 0.4))  # fmt: skip
    decision = decide(history, PARAMS)
    assert decision.decision == "rollback_and_switch" and decision.selected_round == 1
    assert "held-out reward fell -0.60" in decision.reasons[0]


def test_an_ensemble_sign_within_noise_is_not_a_sign():
    history = _history(_ensemble_row(0, 0.0, 0.0, 0.2, se=0.5), _ensemble_row(1, 1.0, 0.8, 0.3, se=0.5),
                       _ensemble_row(2, 2.0, 0.2, 0.4, se=0.5))  # fmt: skip
    assert "held-out" not in " ".join(decide(history, PARAMS).reasons)


def test_a_growing_ensemble_spread_is_a_hacking_sign():
    history = _history(_ensemble_row(0, 0.0, 0.0, 0.2), _ensemble_row(1, 0.5, 0.5, 0.9))
    decision = decide(history, PARAMS)
    assert decision.decision == "rollback_and_switch" and decision.selected_round == 0
    assert "ensemble spread 0.90 vs 0.20" in decision.reasons[0]
    lenient = PARAMS.model_copy(update={"max_ensemble_spread_growth": 1.0})
    assert decide(history, lenient).decision != "rollback_and_switch"


def test_a_history_without_heldout_members_shows_no_ensemble_sign():
    history = _history(_ensemble_row(0, 0.0, math.nan, 0.0), _ensemble_row(1, 1.0, math.nan, 5.0))
    assert decide(history, PARAMS).hacking_signs == {}
