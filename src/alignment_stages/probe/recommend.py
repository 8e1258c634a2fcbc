"""Which stage is the start in? The seed's three questions, answered beyond sampling noise.

1. Is the start still chaotic?   its violation-rate interval against `chaos_threshold`;
2. Can the team accept the oscillation?   PPO's spread across seeds and across updates against
   `oscillation_tolerance`;
3. Do PPO's gains exceed their risks?   PPO's gain over DPO (violations cut, and reward net of
   the price of its extra KL) against its capability loss and its hacking signs.

Every verdict needs its interval on one side of the line (`stability_gate.confidence`);
otherwise the answer is `inconclusive`, with what to run to decide. One exception: where the
start is chaotic and PPO pays beyond noise but oscillates beyond tolerance, the answer is still
"shape with PPO first", with a caveat naming the settings that calm PPO's updates. The gains
are shown; the swing is what the team controls (Schulman et al. 2017 clip the step; Ziegler
et al. 2019 hold the KL to a target), and "inconclusive" would send it to run more seeds for a
question the probe has answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alignment_stages.behaviour.intervals import Interval
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.gate.rules import oscillation_interval
from alignment_stages.gate.rules import window_oscillation as gate_oscillation
from alignment_stages.probe.evaluate import ProbeEvaluation, paired_interval, per_seed_interval

SHAPE, SETTLE, INCONCLUSIVE = "shape with PPO first", "settle with DPO", "inconclusive"
RECOMMENDATIONS = (SHAPE, SETTLE, INCONCLUSIVE)

# name → per-sample statistic of one seed: (start, ppo, dpo) samples → (N,) values.
STATISTICS = {
    "ppo_violation_cut": lambda s, p, d: s["violation"] - p["violation"],
    "dpo_violation_cut": lambda s, p, d: s["violation"] - d["violation"],
    "ppo_cut_over_dpo": lambda s, p, d: d["violation"] - p["violation"],
    "ppo_reward_gain": lambda s, p, d: p["reward"] - s["reward"],
    "dpo_reward_gain": lambda s, p, d: d["reward"] - s["reward"],
    "ppo_kl_to_start": lambda s, p, d: p["kl"],
    "dpo_kl_to_start": lambda s, p, d: d["kl"],
    "ppo_extra_kl": lambda s, p, d: p["kl"] - d["kl"],
    # ties count half (as AlpacaEval): a policy identical to the start scores 0.5
    "ppo_win_rate_vs_start": lambda s, p, d: (p["reward"] > s["reward"]) + 0.5 * (p["reward"] == s["reward"]),
    "dpo_win_rate_vs_start": lambda s, p, d: (d["reward"] > s["reward"]) + 0.5 * (d["reward"] == s["reward"]),
    "ppo_eos_drop": lambda s, p, d: s["eos"] - p["eos"],
    "ppo_length_drift": lambda s, p, d: (p["length"] - s["length"]) / max(s["length"].mean(), 1e-9),
}  # fmt: skip


@dataclass
class Answers:
    recommendation: str
    questions: dict[str, Any]
    evidence: list[str]
    to_decide: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)


def probe_intervals(
    evaluation: ProbeEvaluation, gate: StabilityGateParams, seed: int
) -> dict[str, Interval]:
    """Every interval the answers use, at `gate.confidence`."""
    level = gate.confidence
    start = evaluation.start
    intervals = {
        "start_violation_rate": paired_interval(
            evaluation.only(evaluation.seeds[0]), lambda s, p, d: s["violation"], level, seed
        ),
        **{name: paired_interval(evaluation, fn, level, seed) for name, fn in STATISTICS.items()},
        # PPO's reward over DPO's, net of the price of its extra KL (the gate's kl_price).
        "ppo_net_gain_over_dpo": paired_interval(
            evaluation,
            lambda s, p, d: (p["reward"] - d["reward"]) - gate.kl_price * (p["kl"] - d["kl"]),
            level,
            seed,
        ),
    }
    base_ppl, base_distinct = start.metrics["probe_perplexity"], start.metrics["distinct_2"]
    intervals["ppo_capability_loss"] = per_seed_interval(
        {s: e.metrics["probe_perplexity"] / base_ppl - 1 for s, e in evaluation.ppo.items()},
        level,
        seed,
    )
    intervals["ppo_distinct_2_drop"] = per_seed_interval(
        {s: 1 - e.metrics["distinct_2"] / max(base_distinct, 1e-9) for s, e in evaluation.ppo.items()},
        level,
        seed,
    )  # fmt: skip
    return intervals


def _seed_disagreement(cuts: np.ndarray) -> np.ndarray:
    """(R,) share of the seeds' violation cuts they disagree on, for (R, S) cuts: 0 when the
    seeds agree, 0.5 when they differ by as much as the mean cut, towards 1 when disagreement
    dominates (the reversal share's "what cancels over what moved")."""
    spread = cuts.max(axis=1) - cuts.min(axis=1)
    total = spread + np.abs(cuts.mean(axis=1))
    return np.where(total > 0, spread / np.where(total > 0, total, 1), 0.0)


def oscillation(
    histories: dict[int, Any],
    per_sample_cuts: dict[int, np.ndarray],
    groups: list[str],
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """PPO's spread across updates (the gate's oscillation over each seed's evaluated updates,
    with its parametric-bootstrap interval) and across seeds (`_seed_disagreement`, with a
    bootstrap over prompts), each at `confidence`."""
    across_updates, bounds = {}, []
    for run_seed, history in histories.items():
        healthy = history[history["healthy"].astype(bool)].reset_index(drop=True)
        across_updates[run_seed] = gate_oscillation(healthy)
        bounds.append(oscillation_interval(healthy, confidence))
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    n_prompts = int(index.max()) + 1
    counts = np.bincount(index, minlength=n_prompts).astype(float)
    sums = np.stack(
        [np.bincount(index, weights=c, minlength=n_prompts) for c in per_sample_cuts.values()]
    )
    picks = np.random.default_rng(seed).integers(0, n_prompts, size=(1000, n_prompts))
    drawn = sums[:, picks].sum(axis=2).T / counts[picks].sum(axis=1)[:, None]  # (R, S) cuts
    tail = (1 - confidence) / 2
    seeds_low, seeds_high = np.quantile(_seed_disagreement(drawn), [tail, 1 - tail])
    cuts = sums.sum(axis=1) / counts.sum()
    return {
        "across_updates": float(np.mean(list(across_updates.values()))),
        "across_updates_interval": [float(np.mean([b[0] for b in bounds])), float(np.mean([b[1] for b in bounds]))],
        "across_updates_per_seed": {str(s): v for s, v in across_updates.items()},
        "across_seeds": float(_seed_disagreement(cuts[None, :])[0]),
        "across_seeds_interval": [float(seeds_low), float(seeds_high)],
        "violation_cut_per_seed": {str(s): float(c) for s, c in zip(per_sample_cuts, cuts, strict=True)},
    }  # fmt: skip


def _risks(iv: dict[str, Interval], gate: StabilityGateParams) -> list[str]:
    """PPO's capability loss and hacking signs that clear the confidence, in plain words."""
    signs = []
    if iv["ppo_reward_gain"].low > 0 and iv["ppo_violation_cut"].high < 0:
        signs.append("reward-model score up while the judges flag more")
    if iv["ppo_capability_loss"].low > gate.max_capability_loss:
        signs.append(f"capability loss: probe perplexity +{iv['ppo_capability_loss'].estimate:.0%}")
    drift = iv["ppo_length_drift"]
    if drift.low > gate.max_length_drift or drift.high < -gate.max_length_drift:
        signs.append(f"length drift {drift.estimate:+.0%}")
    if iv["ppo_distinct_2_drop"].low > gate.max_diversity_drop:
        signs.append(f"diversity collapse: distinct-2 −{iv['ppo_distinct_2_drop'].estimate:.0%}")
    if iv["ppo_eos_drop"].low > gate.max_eos_drop:
        signs.append(f"EOS rate fell {iv['ppo_eos_drop'].estimate:.2f}")
    return signs


def _fmt(interval: Interval) -> str:
    return f"{interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]"


def answer_questions(
    iv: dict[str, Interval], swing: dict[str, Any], gate: StabilityGateParams
) -> Answers:
    """The decision table of the module docstring, with the evidence behind it."""
    chaos = iv["start_violation_rate"]
    chaotic, settled = chaos.low > gate.chaos_threshold, chaos.high <= gate.chaos_threshold
    oscillation_value = max(swing["across_updates"], swing["across_seeds"])
    # beyond tolerance only when a lower bound clears it, as the gate's other signals
    oscillation_low = max(swing["across_updates_interval"][0], swing["across_seeds_interval"][0])
    oscillation_high = max(swing["across_updates_interval"][1], swing["across_seeds_interval"][1])
    steady = oscillation_low <= gate.oscillation_tolerance
    cut, net, risks = iv["ppo_cut_over_dpo"], iv["ppo_net_gain_over_dpo"], _risks(iv, gate)
    pays = cut.low > 0 and net.low > 0 and not risks
    does_not_pay = bool(risks) or cut.high < 0 or net.high < 0
    level = f"{gate.confidence:.0%}"
    questions = {
        "chaotic": {"verdict": "still chaotic" if chaotic else "settled" if settled else "undecided",
                    "violation_rate": chaos.as_dict(), "chaos_threshold": gate.chaos_threshold},
        "oscillation": {"verdict": ("acceptable" if oscillation_high <= gate.oscillation_tolerance else
                                    "not shown beyond tolerance" if steady else "beyond tolerance"),
                        "value": oscillation_value, "low": oscillation_low, "high": oscillation_high,
                        "oscillation_tolerance": gate.oscillation_tolerance, **swing},
        "gains_exceed_risks": {"verdict": "PPO pays" if pays else "gains below costs" if does_not_pay else "undecided",
                               "violation_cut_over_dpo": cut.as_dict(), "net_reward_gain_over_dpo": net.as_dict(),
                               "extra_kl": iv["ppo_extra_kl"].as_dict(), "kl_price": gate.kl_price,
                               "capability_loss": iv["ppo_capability_loss"].as_dict(), "hacking_signs": risks},
    }  # fmt: skip
    evidence = [
        f"1. start violation rate {_fmt(chaos)} ({level}) vs chaos_threshold {gate.chaos_threshold}: "
        + questions["chaotic"]["verdict"],
        f"2. PPO's oscillation {oscillation_value:.3f} [{oscillation_low:.3f}, {oscillation_high:.3f}] "
        f"(across updates {swing['across_updates']:.3f}, across seeds {swing['across_seeds']:.3f}) "
        f"vs oscillation_tolerance {gate.oscillation_tolerance}: "
        + questions["oscillation"]["verdict"],
        f"3. PPO's violation cut over DPO's {_fmt(cut)}; its reward over DPO's net of "
        f"{gate.kl_price}/nat for {_fmt(iv['ppo_extra_kl'])} extra nats: {_fmt(net)}; "
        f"capability loss {_fmt(iv['ppo_capability_loss'])}; hacking signs: {', '.join(risks) or 'none'}: "
        + questions["gains_exceed_risks"]["verdict"],
        f"violations cut: PPO {_fmt(iv['ppo_violation_cut'])}, DPO {_fmt(iv['dpo_violation_cut'])}",
        f"KL to the start: PPO {_fmt(iv['ppo_kl_to_start'])}, DPO {_fmt(iv['dpo_kl_to_start'])}",
        f"reward change: PPO {_fmt(iv['ppo_reward_gain'])}, DPO {_fmt(iv['dpo_reward_gain'])}",
    ]  # fmt: skip
    return _decide(chaotic, settled, steady, pays, does_not_pay, questions, evidence)


def _decide(chaotic, settled, steady, pays, does_not_pay, questions, evidence) -> Answers:
    to_decide = []
    if not (chaotic or settled) and not does_not_pay:
        to_decide.append("more prompts (stage_probe.sampling.max_prompts, samples_per_prompt): "
                         "the start's violation-rate interval straddles chaos_threshold")  # fmt: skip
    if not (pays or does_not_pay):
        to_decide.append("more seeds (stage_probe.seeds) and more prompts to narrow PPO's gain "
                         "over DPO, or a longer budget (stage_probe.updates) if neither run moved")  # fmt: skip
    if settled and pays and not steady:
        to_decide.append("more seeds, to tell PPO's oscillation from noise; if it stays, fix the "
                         "PPO settings or the reward model before shaping")  # fmt: skip
    caveats = []
    # The gate's switch: settled, or PPO's gains below its costs (beyond noise either way).
    if (settled and not pays) or does_not_pay:
        recommendation = SETTLE
        to_decide = []
    elif pays and (chaotic or (settled and steady)):
        recommendation = SHAPE
        to_decide = []
        if not steady:
            caveats.append(_oscillation_caveat(questions["oscillation"]))
    else:
        recommendation = INCONCLUSIVE
    return Answers(recommendation, questions, evidence, to_decide, caveats)


def _oscillation_caveat(swing: dict[str, Any]) -> str:
    """What to change when PPO wins beyond noise but swings beyond tolerance: smaller steps
    first, then a tighter KL leash, each a setting of `ppo_shaping.ppo`."""
    where = ("across updates" if swing["across_updates_interval"][0] >= swing["across_seeds_interval"][0]
             else "across seeds")  # fmt: skip
    return (
        f"PPO oscillates beyond tolerance ({swing['value']:.3f} [{swing['low']:.3f}, "
        f"{swing['high']:.3f}] {where}, tolerance {swing['oscillation_tolerance']}): shape with "
        "gentler updates. Lower ppo_shaping.ppo.learning_rate (halve it), or tighten KL control: "
        "raise ppo_shaping.ppo.kl_coef, or set kl_control: adaptive with a lower kl_target; "
        "stage_probe.ppo takes the same settings to check the change"
    )


def recommend_stage(
    evaluation: ProbeEvaluation, histories: dict[int, Any], gate: StabilityGateParams, seed: int
) -> tuple[Answers, dict[str, Interval]]:
    """The answers for the seeds of `evaluation` (all of them, or one with `only`)."""
    intervals = probe_intervals(evaluation, gate, seed)
    start = evaluation.start.samples()
    cuts = {s: STATISTICS["ppo_violation_cut"](start, evaluation.ppo[s].samples(), None)
            for s in evaluation.seeds}  # fmt: skip
    swing = oscillation({s: histories[s] for s in evaluation.seeds}, cuts,
                        evaluation.start.generations.prompt_ids, gate.confidence, seed)  # fmt: skip
    return answer_questions(intervals, swing, gate), intervals
