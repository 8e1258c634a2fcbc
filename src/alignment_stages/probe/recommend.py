"""Short PPO and DPO runs from one start policy, and the recommendation the gate's rules give."""

from __future__ import annotations

from typing import Any

import pandas as pd

from alignment_stages.dpo.refine import refine_with_dpo
from alignment_stages.evaluation.compare import compare_stages
from alignment_stages.gate.config import StabilityGateParams
from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.ppo.rounds import run_shaping_rounds
from alignment_stages.probe.config import StageProbeParams

SHAPE, SETTLE = "shape with PPO first", "settle with DPO"


def probe_ppo(
    base,
    reward_model,
    reward_metrics,
    ppo_prompts,
    eval_prompts,
    probe,
    judges,
    params: StageProbeParams,
) -> ModelArtifact:
    """One round of `updates` PPO updates: the short shaping run."""
    shaping = params.ppo.model_copy(
        update={"rounds": 1, "updates_per_round": params.updates, "seed": params.seed}
    )
    return run_shaping_rounds(
        base, reward_model, reward_metrics, ppo_prompts, eval_prompts, probe, judges, shaping
    ).ppo_policy


def probe_dpo(
    base: ModelArtifact, preference_train: pd.DataFrame, params: StageProbeParams
) -> ModelArtifact:
    """One DPO epoch over as many pairs as PPO saw prompts."""
    budget = params.updates * params.ppo.ppo.rollout_batch_size
    pairs = preference_train.sample(n=min(budget, len(preference_train)), random_state=params.seed)
    return refine_with_dpo(base, pairs, params.dpo.model_copy(update={"seed": params.seed}))[0]


def recommend_stage(table: pd.DataFrame, gate: StabilityGateParams) -> dict[str, Any]:
    """The gate's first question on the start policy, with the two short runs as evidence."""
    rows = table.set_index("policy")
    start, ppo, dpo = rows.loc["start"], rows.loc["ppo"], rows.loc["dpo"]
    chaotic = start["violation_rate"] > gate.chaos_threshold
    ppo_cut = start["violation_rate"] - ppo["violation_rate"]
    dpo_cut = start["violation_rate"] - dpo["violation_rate"]
    recommendation = SHAPE if chaotic and ppo_cut > dpo_cut else SETTLE
    evidence = [
        f"start violation rate {start['violation_rate']:.3f} vs chaos_threshold {gate.chaos_threshold}: "
        + ("still chaotic" if chaotic else "settled"),
        f"short PPO cut violations by {ppo_cut:.3f}, short DPO by {dpo_cut:.3f} (equal budgets)",
        f"win rate vs start: PPO {ppo['win_rate_vs_base']:.3f}, DPO {dpo['win_rate_vs_base']:.3f}",
        f"KL to start: PPO {ppo['kl_to_base']:.2f}, DPO {dpo['kl_to_base']:.2f}",
    ]
    if chaotic and ppo_cut <= dpo_cut:
        evidence.append("chaotic, but DPO moved further than PPO on this budget")
    stability = {
        name: {"label_disagreement_within_prompt": float(rows.loc[name, "label_disagreement_within_prompt"]),
               "reward_spread_within_prompt": float(rows.loc[name, "reward_spread_within_prompt"]),
               "distinct_2": float(rows.loc[name, "distinct_2"]), "length_mean": float(rows.loc[name, "length_mean"])}
        for name in ("start", "ppo", "dpo")
    }  # fmt: skip
    return {
        "recommendation": recommendation,
        "evidence": evidence,
        "style_and_stability": stability,
    }


def render_recommendation(result: dict[str, Any], sides: pd.DataFrame) -> str:
    lines = [f"# Stage probe: **{result['recommendation']}**", "", "## Evidence", ""]
    lines += [f"- {item}" for item in result["evidence"]]
    lines += ["", "## Style and stability", "", "| policy | label disagreement | reward spread | distinct-2 | length |",
              "|---|---|---|---|---|"]  # fmt: skip
    for name, values in result["style_and_stability"].items():
        lines.append(f"| {name} | {values['label_disagreement_within_prompt']:.3f} | "
                     f"{values['reward_spread_within_prompt']:.3f} | {values['distinct_2']:.3f} | {values['length_mean']:.1f} |")  # fmt: skip
    lines += ["", "## Side by side", ""]
    for _, row in sides.drop_duplicates("prompt_id").iterrows():
        lines.append(f"- **{row['prompt']}**")
        lines += [
            f"  - {name}: {row[f'{name}_response']!r} ({row[f'{name}_label']})"
            for name in ("start", "ppo", "dpo")
        ]
    return "\n".join(lines) + "\n"


def run_probe_evaluation(
    start, ppo, dpo, reward_model, judges: JudgePanel, eval_prompts, probe, params: StageProbeParams
):
    table, sides = compare_stages(
        {"base": start, "ppo": ppo, "dpo": dpo}, reward_model, judges, eval_prompts, probe,
        params.sampling, params.side_by_side_prompts,
    )  # fmt: skip
    table["policy"] = table["policy"].replace({"base": "start"})
    sides = sides.rename(
        columns=lambda c: c.replace("base_", "start_", 1) if c.startswith("base_") else c
    )
    return table, sides
