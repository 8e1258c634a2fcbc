"""`stage_recommendation` (JSON, its keys in docs/metrics.md) and its Markdown report."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.probe.config import StageProbeParams
from alignment_stages.probe.evaluate import ProbeEvaluation
from alignment_stages.probe.recommend import recommend_stage
from alignment_stages.probe.short_runs import seed_key

POLICIES = ("start", "ppo", "dpo")
STABILITY = ("label_disagreement_within_prompt", "reward_spread_within_prompt", "distinct_2",
             "length_mean")  # fmt: skip


def _budgets(ppo: dict[str, Any], dpo: dict[str, Any]) -> dict[str, float]:
    return {
        "ppo_optimizer_steps": ppo["optimizer_steps"],
        "dpo_optimizer_steps": dpo["optimizer_steps"],
        "ppo_seconds": ppo["seconds"],
        "dpo_seconds": dpo["seconds"],
    }


def _mean_rows(rows: list[dict[str, dict]]) -> list[dict[str, Any]]:
    """One comparison row per policy: each numeric column averaged over the seeds."""
    out = []
    for name in POLICIES:
        frame = pd.DataFrame([seed_rows[name] for seed_rows in rows]).drop(columns="policy")
        out.append({"policy": name, **{k: float(v) for k, v in frame.mean().items()}})
    return out


def stage_recommendation(
    evaluation: ProbeEvaluation,
    ppo_runs: dict[str, dict],
    dpo_runs: dict[str, dict],
    params: StageProbeParams,
    gate: StabilityGateParams,
) -> dict[str, Any]:
    histories = {s: pd.DataFrame(ppo_runs[seed_key(s)]["history"]) for s in evaluation.seeds}
    interval_seed = params.sampling.seed
    answers, intervals = recommend_stage(evaluation, histories, gate, interval_seed)
    seeds = []
    for seed in evaluation.seeds:
        alone, alone_intervals = recommend_stage(
            evaluation.only(seed), histories, gate, interval_seed
        )
        seeds.append({
            "seed": seed,
            "recommendation": alone.recommendation,
            "caveats": alone.caveats,
            "budgets": _budgets(ppo_runs[seed_key(seed)], dpo_runs[seed_key(seed)]),
            "intervals": {k: v.as_dict() for k, v in alone_intervals.items()},
            "comparison": list(evaluation.rows(seed).values()),
        })  # fmt: skip
    per_seed = [s["budgets"] for s in seeds]
    budgets = {"match": params.budget.match,
               **{k: float(np.mean([b[k] for b in per_seed])) for k in per_seed[0]}}  # fmt: skip
    comparison = _mean_rows([evaluation.rows(seed) for seed in evaluation.seeds])
    return {
        "recommendation": answers.recommendation,
        "start": params.start,
        "dpo_pairs": params.dpo.pairs,  # curated, onpolicy (the start's own answers) or mixed
        "confidence": gate.confidence,
        "questions": answers.questions,
        "evidence": answers.evidence,
        "to_decide": answers.to_decide,
        "caveats": answers.caveats,
        "intervals": {k: v.as_dict() for k, v in intervals.items()},
        "budgets": budgets,
        "seeds": seeds,
        "comparison": comparison,
        "style_and_stability": {
            row["policy"]: {k: row[k] for k in STABILITY} for row in comparison
        },
    }


def side_by_side(evaluation: ProbeEvaluation, prompts: int) -> pd.DataFrame:
    """The start's answers beside the first seed's PPO and DPO answers."""
    seed = evaluation.seeds[0]
    start = evaluation.start.generations
    sides = pd.DataFrame({"prompt_id": start.prompt_ids,
                          "prompt": [p[-1]["content"] for p in start.prompts]})  # fmt: skip
    for name, run in (("start", evaluation.start), ("ppo", evaluation.ppo[seed]),
                      ("dpo", evaluation.dpo[seed])):  # fmt: skip
        sides[f"{name}_response"] = run.generations.texts
        sides[f"{name}_label"] = run.generations.labels
    keep = sides["prompt_id"].drop_duplicates().head(prompts)
    return sides[sides["prompt_id"].isin(keep)].drop_duplicates("prompt_id")


def _interval(values: dict[str, float]) -> str:
    return f"{values['estimate']:.3f} [{values['low']:.3f}, {values['high']:.3f}]"


def render_recommendation(result: dict[str, Any], sides: pd.DataFrame) -> str:
    b = result["budgets"]
    lines = [f"# Stage probe from `{result['start']}`: **{result['recommendation']}**", "",
             f"Intervals: {result['confidence']:.0%}, bootstrapped over prompts and the "
             f"{len(result['seeds'])} training seeds. DPO learned from "
             f"`{result.get('dpo_pairs', 'curated')}` pairs.", "", "## Evidence", ""]  # fmt: skip
    lines += [f"- {item}" for item in result["evidence"]]
    if result.get("caveats"):
        lines += ["", "## Caveats", "", *[f"- {item}" for item in result["caveats"]]]
    if result["to_decide"]:
        lines += ["", "## To decide, run", "", *[f"- {item}" for item in result["to_decide"]]]
    lines += ["", f"## Budgets (equal {b['match']}, mean per seed)", "",
              "| run | optimizer steps | training seconds |", "|---|---|---|",
              f"| PPO | {b['ppo_optimizer_steps']:.0f} | {b['ppo_seconds']:.1f} |",
              f"| DPO | {b['dpo_optimizer_steps']:.0f} | {b['dpo_seconds']:.1f} |",
              "", "## Per seed", "",
              "| seed | recommendation | PPO violation cut | DPO violation cut | PPO KL | DPO KL |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for seed in result["seeds"]:
        iv = seed["intervals"]
        caveat = " (with a caveat)" if seed.get("caveats") else ""
        lines.append(f"| {seed['seed']} | {seed['recommendation']}{caveat} | {_interval(iv['ppo_violation_cut'])} | "
                     f"{_interval(iv['dpo_violation_cut'])} | {_interval(iv['ppo_kl_to_start'])} | "
                     f"{_interval(iv['dpo_kl_to_start'])} |")  # fmt: skip
    lines += [
        "",
        "## Intervals (all seeds)",
        "",
        "| statistic | estimate [low, high] |",
        "|---|---|",
    ]
    lines += [f"| {name} | {_interval(values)} |" for name, values in result["intervals"].items()]
    lines += ["", "## Style and stability (mean over seeds)", "",
              "| policy | label disagreement | reward spread | distinct-2 | length |", "|---|---|---|---|---|"]  # fmt: skip
    for name, v in result["style_and_stability"].items():
        lines.append(f"| {name} | {v['label_disagreement_within_prompt']:.3f} | {v['reward_spread_within_prompt']:.3f} "
                     f"| {v['distinct_2']:.3f} | {v['length_mean']:.1f} |")  # fmt: skip
    lines += ["", "## Side by side (first seed)", ""]
    for _, row in sides.iterrows():
        lines.append(f"- **{row['prompt']}**")
        lines += [
            f"  - {name}: {row[f'{name}_response']!r} ({row[f'{name}_label']})" for name in POLICIES
        ]
    return "\n".join(lines) + "\n"
