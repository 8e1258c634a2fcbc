"""The gate beyond noise: each signal's interval, and triggers that need it to clear the
threshold, on synthetic histories with standard errors (`<metric>_se`) at the boundaries."""

from statistics import NormalDist

import pandas as pd
import pytest

from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.gate.report import render_gate_report
from alignment_stages.gate.rules import decide, z_score
from tests.gate.test_rules import _row

PARAMS = StabilityGateParams()
Z95 = NormalDist().inv_cdf(0.975)


def _noisy(row: dict, reward_se=0.0, violation_se=0.0, samples=235, **more) -> dict:
    return {**row, "reward_mean_se": reward_se, "violation_rate_se": violation_se,
            "kl_to_base_se": 0.0, "eos_rate_se": 0.0, "length_mean_se": 0.0,
            "samples": samples, **more}  # fmt: skip


def _signals(history: pd.DataFrame, params=PARAMS) -> dict:
    return {s.name: s for s in decide(history, params).signals}


def test_z_score_is_the_two_sided_normal_quantile():
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_score(0.5) == pytest.approx(0.674490, abs=1e-6)


@pytest.mark.parametrize(
    ("margin", "chaotic"),
    [(-1e-4, False), (1e-4, True)],  # lower bound just below / just above the threshold
)
def test_chaos_triggers_only_when_its_lower_bound_clears_the_threshold(margin, chaotic):
    se = 0.02
    rate = PARAMS.chaos_threshold + Z95 * se + margin
    history = pd.DataFrame([_noisy(_row(0, 0.0, 0.5)), _noisy(_row(1, 1.0, rate), violation_se=se)])
    signal = _signals(history)["chaos_rate"]
    assert signal.triggered is chaotic
    assert signal.low == pytest.approx(rate - Z95 * se) and signal.high == pytest.approx(
        rate + Z95 * se
    )
    assert signal.verdict == (
        "still chaotic"
        if chaotic
        else f"undecided: the interval straddles {PARAMS.chaos_threshold:.4g}"
    )


def test_a_point_above_the_threshold_inside_the_noise_is_not_chaos_at_95_but_is_at_50():
    history = pd.DataFrame(
        [_noisy(_row(0, 0.0, 0.5)), _noisy(_row(1, 1.0, 0.12), violation_se=0.02)]
    )
    assert not _signals(history)["chaos_rate"].triggered  # 0.12 − 1.96·0.02 = 0.081
    loose = PARAMS.model_copy(update={"confidence": 0.5})
    assert _signals(history, loose)["chaos_rate"].triggered  # 0.12 − 0.674·0.02 = 0.1065


def test_a_violation_rise_of_0004_on_235_samples_is_no_hacking_sign():
    """The issue's example: reward up, violation rate up by 0.004, well inside its noise."""
    se = (0.05 * 0.95 / 235) ** 0.5
    rows = [_row(0, 0.0, 0.45), _row(1, 1.0, 0.050), _row(2, 1.5, 0.054)]
    history = pd.DataFrame([_noisy(r, reward_se=0.05, violation_se=se) for r in rows])
    result = decide(history, PARAMS)
    assert result.decision == "switch_to_refinement" and not result.hacking_signs
    hacking = {s.name: s for s in result.signals}["hacking_signs"]
    # seen at point estimates (the interval's upper end), not beyond noise (its value)
    assert (hacking.value, hacking.low, hacking.high) == (0.0, 0.0, 1.0)
    # Without standard errors the old point rule still fires on the same numbers.
    assert decide(pd.DataFrame(rows), PARAMS).decision == "rollback_and_switch"


def test_a_violation_rise_beyond_its_interval_is_a_hacking_sign():
    rows = [_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.25)]
    history = pd.DataFrame([_noisy(r, reward_se=0.05, violation_se=0.02) for r in rows])
    result = decide(history, PARAMS)
    assert result.decision == "rollback_and_switch" and result.selected_round == 1
    assert "judges flag more" in " ".join(result.hacking_signs["round_002"])


@pytest.mark.parametrize(
    ("gain_se", "decision"), [(0.05, "continue_shaping"), (0.001, "switch_to_refinement")]
)
def test_gains_below_costs_only_when_the_gain_interval_lies_below_the_price(gain_se, decision):
    """Chaotic, gain 0.02 per round against a price of 0.05: with a wide interval PPO is not
    shown to have stopped paying off; with a narrow one it is."""
    se = gain_se / 2**0.5  # the gain's standard error from two rounds' equal ones
    rows = [_row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=0.0), _row(2, 1.02, 0.39, kl=0.0)]
    history = pd.DataFrame([_noisy(r, reward_se=se, violation_se=0.01) for r in rows])
    result = decide(history, PARAMS)
    assert result.decision == decision
    gain = {s.name: s for s in result.signals}["gain_per_round"]
    assert gain.high == pytest.approx(0.02 + Z95 * gain_se)


def test_an_undecided_gain_is_not_reported_as_paying_off():
    """A negative gain whose interval still reaches the price keeps shaping (nothing shows PPO
    stopped paying off), and the reason says so instead of "paying off (gain −0.025 > 0.050)"."""
    se = 0.08 / 2**0.5
    rows = [_row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=0.0), _row(2, 0.975, 0.39, kl=0.0)]
    result = decide(
        pd.DataFrame([_noisy(r, reward_se=se, violation_se=0.01) for r in rows]), PARAMS
    )
    assert result.decision == "continue_shaping"
    words = " ".join(result.reasons)
    assert "paying off" not in words
    assert "-0.025" in words and "not shown below its cost 0.050" in words


def test_a_gain_beyond_its_cost_is_reported_with_its_interval():
    rows = [_row(0, 0.0, 0.5, kl=0.0), _row(1, 1.0, 0.4, kl=0.0), _row(2, 1.5, 0.3, kl=0.0)]
    result = decide(
        pd.DataFrame([_noisy(r, reward_se=0.01, violation_se=0.01) for r in rows]), PARAMS
    )
    assert result.decision == "continue_shaping"
    assert any(r.startswith("PPO still paying off (gain 0.500 [") for r in result.reasons)


@pytest.mark.parametrize(("eos_se", "sign"), [(0.0, True), (0.05, False)])
def test_eos_drop_counts_only_beyond_its_interval(eos_se, sign):
    rows = [_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.05, eos=0.55)]  # drop 0.35 > 0.3
    history = pd.DataFrame([_noisy(r, eos_rate_se=eos_se) for r in rows])
    assert ("round_002" in decide(history, PARAMS).hacking_signs) is sign


def test_every_signal_carries_its_interval_and_the_report_prints_it():
    rows = [_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.08), _row(3, 1.6, 0.05)]
    history = pd.DataFrame([_noisy(r, reward_se=0.04, violation_se=0.015) for r in rows])
    result = decide(history, PARAMS)
    for signal in result.signals:
        assert signal.confidence == 0.95
        assert signal.low <= signal.value <= signal.high, signal.name
    oscillation = {s.name: s for s in result.signals}["oscillation"]
    assert oscillation.high > oscillation.low  # noise in the rounds widens it
    as_json = result.as_dict()["signals"]["chaos_rate"]
    assert {"low", "high", "confidence"} <= set(as_json)
    report = render_gate_report(result, history)
    chaos = as_json
    assert f"[{chaos['low']:.4g}, {chaos['high']:.4g}]" in report and "95%" in report


def test_a_history_without_standard_errors_gives_point_intervals():
    history = pd.DataFrame([_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.05)])
    for signal in decide(history, PARAMS).signals:
        if signal.name != "hacking_signs":
            assert signal.low == pytest.approx(signal.value) == pytest.approx(signal.high)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_confidence_outside_zero_one_is_rejected(bad):
    with pytest.raises(ValueError, match="confidence"):
        StabilityGateParams(confidence=bad)


@pytest.mark.parametrize(("distinct_se", "sign"), [(0.0, True), (0.03, False)])
def test_diversity_collapse_counts_only_beyond_distinct_2s_interval(distinct_se, sign):
    # distinct-2 0.19 under the floor 0.5 · 0.40 = 0.20 by 0.01; 1.96 · √2 · 0.03 covers it
    rows = [_row(0, 0.0, 0.45), _row(1, 1.0, 0.15), _row(2, 1.5, 0.05, distinct=0.19)]
    history = pd.DataFrame([_noisy(r, distinct_2_se=distinct_se) for r in rows])
    assert ("round_002" in decide(history, PARAMS).hacking_signs) is sign
