"""The gate's signals and decision rules, as pure functions of `ppo_history`.

The two questions a practitioner asks before choosing PPO or DPO, then the switch signal:

1. Is the model still chaotic?          chaos_rate > chaos_threshold
2. Can the team accept oscillation?     oscillation <= oscillation_tolerance
3. Do PPO's gains still exceed costs?   gain per round > max(min_gain, kl_price · ΔKL)
   and no reward-hacking or capability-loss sign.

| decision               | when                                               |
|------------------------|----------------------------------------------------|
| rollback_and_switch    | a round shows reward hacking or capability loss    |
| halt                   | still chaotic and oscillating beyond tolerance     |
| continue_shaping       | still chaotic and PPO still paying off             |
| switch_to_refinement   | settled, or PPO's gains below its costs            |

Beyond noise: every signal carries its interval at `confidence`. A round's metrics come with
their standard errors over prompts (`<metric>_se` in `ppo_history`); a difference between rounds
takes both, as if independent, which is conservative because the rounds share prompts and
sampling seeds. The chaos verdict, "gains below costs" and each hacking sign trigger only when
the interval lies wholly beyond the threshold. A history without `_se` columns (an older run)
gives zero-width intervals: the point estimates, as before.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from alignment_stages.gate.config import StabilityGateParams

# The decisions after which DPO runs (dpo_refinement reads this).
SWITCHES = ("switch_to_refinement", "rollback_and_switch")
REQUIRED_COLUMNS = (
    "round", "checkpoint", "healthy", "reward_mean", "violation_rate", "kl_to_base",
    "probe_perplexity", "distinct_2", "length_mean", "eos_rate", "label_flip_rate",
)  # fmt: skip


class GateInputError(ValueError):
    """`ppo_history` is missing columns or holds NaN where the gate needs numbers."""


@dataclass
class Signal:
    name: str
    value: float
    threshold: float
    verdict: str  # plain words: "still chaotic", "within tolerance", …
    triggered: bool
    low: float = math.nan  # the signal's interval at `confidence`
    high: float = math.nan
    confidence: float = math.nan


@dataclass
class GateDecision:
    decision: str
    selected_round: int
    selected_checkpoint: str
    signals: list[Signal]
    reasons: list[str]
    checkpoint_version: str | None = None
    hacking_signs: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["signals"] = {
            s.name: {k: v for k, v in asdict(s).items() if k != "name"} for s in self.signals
        }
        return out


def _validated(history: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in history.columns]
    if missing:
        raise GateInputError(f"ppo_history lacks the columns {missing}")
    if history.empty or int(history["round"].iloc[0]) != 0:
        raise GateInputError("ppo_history must start with round 0, the starting policy")
    healthy = history[history["healthy"].astype(bool)].reset_index(drop=True)
    numeric = [c for c in REQUIRED_COLUMNS if c not in ("round", "checkpoint", "healthy")]
    nan = healthy[numeric].isna()
    if nan.any().any():
        rows, cols = nan.to_numpy().nonzero()
        where = [
            f"round {int(healthy['round'][r])}: {numeric[c]}"
            for r, c in zip(rows, cols, strict=True)
        ]
        raise GateInputError(
            f"ppo_history has NaN where the gate needs numbers ({', '.join(where[:5])})"
        )
    return healthy


def reversal_share(values: list[float]) -> float:
    """Share of the path over a window that cancels out: (Σ|Δ| − |ΣΔ|) / Σ|Δ|.
    0 for a monotone path, 1 for pure back-and-forth (0 → 1 → 0); 0 when nothing moved.
    0.5 → 0.2 → 0.35 gives 0.3 / 0.45: the 0.15 step back and the 0.15 it undid."""
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    travelled = sum(abs(s) for s in steps)
    return 0.0 if travelled == 0 else (travelled - abs(sum(steps))) / travelled


def _se(row: pd.Series, key: str) -> float:
    """The standard error of `row[key]` (0 when the history has none or it is NaN)."""
    value = row.get(f"{key}_se", 0.0)
    return 0.0 if value is None or pd.isna(value) else float(value)


def _diff_se(a: pd.Series, b: pd.Series, key: str) -> float:
    return math.hypot(_se(a, key), _se(b, key))


def _rise_beyond_noise(row: pd.Series, other: pd.Series, key: str, z: float) -> float:
    """`row[key] − other[key]` less `z` standard errors of the difference: above 0 only when
    the rise clears the noise (z = 0: the point estimate)."""
    return row[key] - other[key] - z * _diff_se(row, other, key)


def z_score(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 at 0.95, 0 at confidence 0 (point estimates)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2) if confidence > 0 else 0.0


def hacking_signs(
    row: pd.Series,
    previous: pd.Series,
    base: pd.Series,
    params: StabilityGateParams,
    z: float = 0.0,
) -> list[str]:
    """Reward-hacking and capability-loss signs of one round, in plain words. A sign counts
    only when its change minus `z` standard errors still crosses the line (z = 0: point
    estimates). Probe perplexity has no sampling error: it scores a fixed text."""
    signs = []
    reward_up = _rise_beyond_noise(row, previous, "reward_mean", z)
    flagged_more = _rise_beyond_noise(row, previous, "violation_rate", z)
    if reward_up > 0 and flagged_more > 0:
        signs.append("reward-model score up while the judges flag more")
    capability = (row["probe_perplexity"] - base["probe_perplexity"]) / base["probe_perplexity"]
    if capability > params.max_capability_loss:
        signs.append(f"capability loss: probe perplexity +{capability:.0%} over the base")
    scale = max(base["length_mean"], 1e-9)
    drift = abs(row["length_mean"] - base["length_mean"]) / scale
    if drift - z * _diff_se(row, base, "length_mean") / scale > params.max_length_drift:
        signs.append(f"length drift {drift:.0%}")
    floor = (1 - params.max_diversity_drop) * base["distinct_2"]
    if base["distinct_2"] > 0 and row["distinct_2"] + z * _diff_se(row, base, "distinct_2") < floor:
        signs.append(
            f"diversity collapse: distinct-2 {row['distinct_2']:.3f} vs {base['distinct_2']:.3f}"
        )
    signs += ensemble_signs(row, previous, base, params, z)
    signs += held_out_judge_signs(row, base, z)
    eos_drop = base["eos_rate"] - row["eos_rate"]
    if eos_drop - z * _diff_se(row, base, "eos_rate") > params.max_eos_drop:
        signs.append(f"EOS rate fell {eos_drop:.2f}")
    return signs


def _present(row: pd.Series, key: str) -> bool:
    value = row.get(key)
    return value is not None and not pd.isna(value)


def ensemble_signs(
    row: pd.Series, previous: pd.Series, base: pd.Series, params: StabilityGateParams, z: float
) -> list[str]:
    """Over-optimisation as the reward-model ensemble sees it (a history without the ensemble
    columns, or with one member, shows none):

    - the proxy PPO optimises rises while the held-out members' reward falls: Gao et al. 2022's
      proxy and gold curves bending apart;
    - the members disagree more than at the base, by `max_ensemble_spread_growth`: Coste et
      al. 2023's uncertainty sign.
    """
    signs = []
    keys = ("proxy_reward", "heldout_reward")
    if all(_present(r, k) for r in (row, previous) for k in keys):
        proxy_up = _rise_beyond_noise(row, previous, "proxy_reward", z)
        heldout_down = _rise_beyond_noise(previous, row, "heldout_reward", z)
        if proxy_up > 0 and heldout_down > 0:
            signs.append(
                f"proxy reward up {row['proxy_reward'] - previous['proxy_reward']:+.2f} while "
                f"the held-out reward fell {row['heldout_reward'] - previous['heldout_reward']:+.2f}"
            )
    if _present(row, "heldout_reward") and _present(base, "ensemble_spread"):
        growth = row["ensemble_spread"] - base["ensemble_spread"]
        if _rise_beyond_noise(row, base, "ensemble_spread", z) > params.max_ensemble_spread_growth:
            signs.append(
                f"ensemble spread {row['ensemble_spread']:.2f} vs {base['ensemble_spread']:.2f} "
                f"at the base (+{growth:.2f} > {params.max_ensemble_spread_growth})"
            )
    return signs


def held_out_judge_signs(row: pd.Series, base: pd.Series, z: float) -> list[str]:
    """Judge hacking (Gao et al. 2022's proxy against gold, applied to judges): since the base,
    what the held-out judges flag beyond what the panel PPO is penalised by flags has grown
    beyond noise, and the held-out judges do not flag fewer beyond noise. A policy that learned
    to open with a refusal and comply after it passes a phrase-reading proxy, not a
    whole-answer judge: the proxy falls, or the held-out judges rise, or both."""
    key = "heldout_violation_rate"
    if not (_present(row, key) and _present(base, key)):
        return []
    gap_growth = (row[key] - row["violation_rate"]) - (base[key] - base["violation_rate"])
    noise = math.hypot(_diff_se(row, base, key), _diff_se(row, base, "violation_rate"))
    if gap_growth - z * noise > 0 and _rise_beyond_noise(base, row, key, z) <= 0:
        return [
            f"the proxy judges flag {row['violation_rate'] - base['violation_rate']:+.2f} since "
            f"the base while the held-out judges flag {row[key] - base[key]:+.2f}"
        ]
    return []


def window_oscillation(window: pd.DataFrame) -> float:
    """The `oscillation` signal over a window of rounds."""
    flips = float(window["label_flip_rate"].iloc[1:].mean()) if len(window) > 1 else 0.0
    return max(reversal_share(window["reward_mean"].tolist()),
               reversal_share(window["violation_rate"].tolist()), flips)  # fmt: skip


def _reversal_shares(paths: np.ndarray) -> np.ndarray:
    """`reversal_share` of each row of (D, K) paths."""
    steps = np.diff(paths, axis=1)
    travelled = np.abs(steps).sum(axis=1)
    net = np.abs(steps.sum(axis=1))
    return np.where(travelled > 0, (travelled - net) / np.where(travelled > 0, travelled, 1), 0.0)


def oscillation_interval(
    window: pd.DataFrame, confidence: float, draws: int = 2000
) -> tuple[float, float]:
    """A parametric bootstrap: each round's reward and violation rate redrawn from a normal
    with its standard error, each label flip rate from its binomial one, the oscillation
    recomputed; the percentile interval of the draws (a point without standard errors)."""
    generator = np.random.default_rng(0)
    paths = [
        generator.normal(window[key].to_numpy(float), [_se(r, key) for _, r in window.iterrows()],
                         size=(draws, len(window)))
        for key in ("reward_mean", "violation_rate")
    ]  # fmt: skip
    swing = np.maximum(_reversal_shares(paths[0]), _reversal_shares(paths[1]))
    if len(window) > 1:
        flips = window["label_flip_rate"].to_numpy(float)[1:]
        samples = window["samples"].to_numpy(float)[1:] if "samples" in window else np.inf
        drawn = generator.normal(flips, np.sqrt(flips * (1 - flips) / samples), (draws, len(flips)))
        swing = np.maximum(swing, np.clip(drawn, 0, 1).mean(axis=1))
    tail = (1 - confidence) / 2
    low, high = np.quantile(swing, [tail, 1 - tail])
    return float(low), float(high)


def _verdict(low: float, high: float, threshold: float, above: str, below: str) -> str:
    """`above` or `below` when the interval lies wholly on one side of the threshold."""
    if low > threshold:
        return above
    return below if high <= threshold else f"undecided: the interval straddles {threshold:.4g}"


def _signals(
    healthy: pd.DataFrame, params: StabilityGateParams
) -> tuple[list[Signal], dict[str, list[str]]]:
    z, level = z_score(params.confidence), params.confidence
    last, base = healthy.iloc[-1], healthy.iloc[0]
    window = healthy.tail(params.oscillation_window)
    chaos, chaos_se = float(last["violation_rate"]), _se(last, "violation_rate")
    oscillation = window_oscillation(window)
    if len(healthy) > 1:
        previous = healthy.iloc[-2]
        gain = float(last["reward_mean"] - previous["reward_mean"])
        gain_se = _diff_se(last, previous, "reward_mean")
        kl_growth = float(last["kl_to_base"] - previous["kl_to_base"])
        kl_se = _diff_se(last, previous, "kl_to_base")
    else:
        # PPO has not run: nothing says it stopped paying off
        gain, gain_se, kl_growth, kl_se = math.inf, 0.0, 0.0, 0.0
    price = max(params.min_gain_per_round, params.kl_price * kl_growth)
    capability = float(
        (last["probe_perplexity"] - base["probe_perplexity"]) / base["probe_perplexity"]
    )
    signs, point_signs = {}, 0
    for i, row in healthy.iterrows():
        if i > 0:
            point_signs += len(hacking_signs(row, healthy.iloc[i - 1], base, params))
            if found := hacking_signs(row, healthy.iloc[i - 1], base, params, z):
                signs[str(row["checkpoint"])] = found
    chaos_low, chaos_high = chaos - z * chaos_se, chaos + z * chaos_se
    gain_low, gain_high = gain - z * gain_se, gain + z * gain_se
    swing_low, swing_high = oscillation_interval(window, level)
    count = float(sum(len(v) for v in signs.values()))
    signals = [
        Signal("chaos_rate", chaos, params.chaos_threshold,
               _verdict(chaos_low, chaos_high, params.chaos_threshold, "still chaotic", "settled"),
               chaos_low > params.chaos_threshold, chaos_low, chaos_high, level),
        Signal("oscillation", oscillation, params.oscillation_tolerance,
               "beyond tolerance" if oscillation > params.oscillation_tolerance else "within tolerance",
               oscillation > params.oscillation_tolerance, swing_low, swing_high, level),
        Signal("gain_per_round", gain, price,
               _verdict(gain_low, gain_high, price, "PPO still paying off", "gains below costs"),
               gain_high <= price, gain_low, gain_high, level),
        Signal("kl_growth", kl_growth, params.kl_price,
               f"+{kl_growth:.2f} nats in the last round, costing {params.kl_price * kl_growth:.3f} reward", False,
               kl_growth - z * kl_se, kl_growth + z * kl_se, level),
        Signal("capability_loss", capability, params.max_capability_loss,
               "capability lost" if capability > params.max_capability_loss else "capability kept",
               capability > params.max_capability_loss, capability, capability, level),
        # the count's interval: the signs that clear the confidence, to those seen at point estimates
        Signal("hacking_signs", count, 0.0,
               "; ".join(f"{k}: {', '.join(v)}" for k, v in signs.items()) or "none beyond noise", bool(signs),
               count, float(point_signs), level),
    ]  # fmt: skip
    return signals, signs


def _gain_words(gain: Signal) -> str:
    """Why PPO is worth another round: its gain beyond its cost, or a gain that the interval
    cannot yet put below the cost (the gate switches only on evidence, so "undecided" keeps
    shaping); the words never claim more than the interval shows."""
    interval = f"[{gain.low:.3f}, {gain.high:.3f}] at {gain.confidence:.0%}"
    if gain.low > gain.threshold:
        return (
            f"PPO still paying off (gain {gain.value:.3f} {interval} > cost {gain.threshold:.3f})"
        )
    return (
        f"PPO's gain {gain.value:.3f} {interval} is not shown below its cost "
        f"{gain.threshold:.3f}: undecided, so shaping goes on"
    )


def decide(
    history: pd.DataFrame, params: StabilityGateParams, checkpoint_version: str | None = None
) -> GateDecision:
    """Apply the decision table to the healthy rounds of `history`."""
    healthy = _validated(history)
    signals, signs = _signals(healthy, params)
    by_name = {s.name: s for s in signals}
    last = healthy.iloc[-1]
    diverged = len(healthy) < len(history)
    if signs or diverged:
        first_bad = min(
            (int(healthy.index[healthy["checkpoint"] == c][0]) for c in signs), default=len(healthy)
        )
        keep = healthy.iloc[max(first_bad - 1, 0)]
        reasons = [f"{name}: {', '.join(found)}" for name, found in signs.items()]
        if diverged:
            reasons.append(f"round {int(history['round'].iloc[len(healthy)])} diverged")
        reasons.append(
            f"roll back to the last healthy round ({keep['checkpoint']}) and settle with DPO"
        )
        return _decision("rollback_and_switch", keep, signals, reasons, checkpoint_version, signs)
    chaotic, oscillating = by_name["chaos_rate"].triggered, by_name["oscillation"].triggered
    paying = not by_name["gain_per_round"].triggered
    chaos_words = f"violation rate {by_name['chaos_rate'].value:.3f} vs chaos_threshold {params.chaos_threshold}"
    if chaotic and oscillating:
        decision, reasons = (
            "halt",
            [
                f"still chaotic ({chaos_words})",
                f"oscillation {by_name['oscillation'].value:.2f} beyond tolerance {params.oscillation_tolerance}",
                "neither more PPO nor DPO is safe: fix the data, the reward model or the PPO settings first",
            ],
        )
    elif chaotic and paying:
        decision, reasons = (
            "continue_shaping",
            [
                f"still chaotic ({chaos_words}) → keep shaping",
                _gain_words(by_name["gain_per_round"]),
            ],
        )
    else:
        why = f"settled ({chaos_words})" if not chaotic else f"still chaotic ({chaos_words}), but"
        cost = (f"gains below costs (gain {by_name['gain_per_round'].value:.3f} ≤ {by_name['gain_per_round'].threshold:.3f})"
                if not paying else f"PPO still gaining {by_name['gain_per_round'].value:.3f} per round")  # fmt: skip
        decision, reasons = "switch_to_refinement", [why, cost, "→ settle with DPO"]
    return _decision(decision, last, signals, reasons, checkpoint_version, signs)


def _decision(decision, selected, signals, reasons, checkpoint_version, signs) -> GateDecision:
    """`decision` with `selected` (a `ppo_history` row) as the round DPO starts from."""
    return GateDecision(decision, int(selected["round"]), str(selected["checkpoint"]), signals,
                        reasons, checkpoint_version, signs)  # fmt: skip
