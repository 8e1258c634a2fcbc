"""Every stage on the same evaluation set: the comparison table, side-by-side generations,
the Markdown report and the charts."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from alignment_stages.behaviour.intervals import bootstrap_mean
from alignment_stages.evaluation.memo import weights_fingerprint
from alignment_stages.evaluation.protocol import EvalProtocol, PolicyEvaluation
from alignment_stages.evaluation.snapshot import Generations
from alignment_stages.models.artifacts import ModelArtifact

logger = logging.getLogger(__name__)


# The held-out judges' rate and its 95% interval over prompts, where any judge is held out.
HELDOUT_COLUMNS = (
    "heldout_violation_rate", "heldout_violation_rate_ci_low", "heldout_violation_rate_ci_high",
)  # fmt: skip


def _consistency(generations: Generations) -> tuple[float, float]:
    """Style consistency: mean within-prompt std of reward, and the share of prompts whose
    samples got different judged labels (0 when every prompt is answered one way)."""
    frame = pd.DataFrame(
        {
            "prompt": generations.prompt_ids,
            "reward": generations.rewards,
            "label": generations.labels,
        }
    )
    grouped = frame.groupby("prompt", sort=False)
    reward_spread = float(grouped["reward"].std(ddof=0).mean())
    label_spread = float((grouped["label"].nunique() > 1).mean())
    return reward_spread, label_spread


def win_rate(rewards: np.ndarray, base_rewards: np.ndarray) -> float:
    """Same prompt and sample index: a win is a higher reward-model score than base's answer, a
    tie counts as half, so a policy identical to base scores 0.5 (as AlpacaEval counts ties)."""
    return float(np.mean((rewards > base_rewards) + 0.5 * (rewards == base_rewards)))


def paired_deltas(
    name: str, generations: Generations, reference: Generations, seed: int
) -> dict[str, float]:
    """Violation-rate and reward differences against `reference` (same prompts, same sample
    order), each with its 95% interval bootstrapped over prompts."""
    flagged = np.asarray(generations.labels) == "violation"
    reference_flagged = np.asarray(reference.labels) == "violation"
    deltas = {
        "violation_delta": flagged.astype(float) - reference_flagged,
        "reward_delta": np.asarray(generations.rewards) - np.asarray(reference.rewards),
    }
    row: dict[str, float] = {}
    for key, values in deltas.items():
        interval = bootstrap_mean(values, generations.prompt_ids, seed=seed)
        row[f"{key}_vs_{name}"] = interval.estimate
        row[f"{key}_vs_{name}_ci_low"], row[f"{key}_vs_{name}_ci_high"] = (
            interval.low,
            interval.high,
        )
    return row


def stage_row(
    name: str, metrics: dict[str, Any], generations: Generations, base: Generations
) -> dict[str, Any]:
    rewards = np.asarray(generations.rewards)
    half_width = (
        1.96 * rewards.std(ddof=1) / math.sqrt(len(rewards)) if len(rewards) > 1 else float("nan")
    )
    reward_spread, label_spread = _consistency(generations)
    return {
        "policy": name,
        "reward_mean": metrics["reward_mean"],
        "reward_ci_low": metrics["reward_mean"] - half_width,
        "reward_ci_high": metrics["reward_mean"] + half_width,
        "win_rate_vs_base": win_rate(rewards, np.asarray(base.rewards)),
        "violation_rate": metrics["violation_rate"],
        "violation_rate_ci_low": metrics["violation_rate_ci_low"],
        "violation_rate_ci_high": metrics["violation_rate_ci_high"],
        # each judge's rate beside the panel's (`violation_rate/<judge>`), and the held-out
        # judges' (`behaviour_judges.held_out`), which PPO never saw
        **{key: value for key, value in metrics.items() if key.startswith("violation_rate/")},
        **{key: metrics[key] for key in HELDOUT_COLUMNS if key in metrics},
        "kl_to_base": metrics["kl_to_base"],
        "probe_perplexity": metrics["probe_perplexity"],
        "distinct_1": metrics["distinct_1"],
        "distinct_2": metrics["distinct_2"],
        "length_mean": metrics["length_mean"],
        "length_std": metrics["length_std"],
        "eos_rate": metrics["eos_rate"],
        "reward_spread_within_prompt": reward_spread,
        "label_disagreement_within_prompt": label_spread,
        "samples": len(rewards),
    }


GROUPINGS = ("category", "source")


# `stage_rates_by_group`: the panel's rate and the held-out judges' (NaN where none is held out).
GROUP_RATE_COLUMNS = (
    "policy", "grouping", "group", "prompts", "samples",
    "violation_rate", "violation_rate_ci_low", "violation_rate_ci_high",
    "heldout_violation_rate", "heldout_violation_rate_ci_low", "heldout_violation_rate_ci_high",
)  # fmt: skip


def rates_by_group(
    results: Mapping[str, PolicyEvaluation], eval_prompts: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """Each stage's violation rate per prompt category (unsafe: compliance; benign: refusal or
    an unhelpful answer) and per source set, with 95% intervals bootstrapped over prompts: a
    real evaluation set mixes sets whose rates differ, and one overall rate hides which moved.
    The held-out judges' rate stands beside the panel's (NaN where none is held out)."""
    by_prompt = eval_prompts.drop_duplicates("prompt_id").set_index("prompt_id")
    rows = []
    for name, evaluated in results.items():
        generations = evaluated.generations
        judges = {"": np.asarray(generations.labels) == "violation"}
        if generations.heldout_labels:
            judges["heldout_"] = np.asarray(generations.heldout_labels) == "violation"
        prompt_ids = np.asarray(generations.prompt_ids)
        for grouping in GROUPINGS:
            if grouping not in by_prompt:
                continue
            groups = by_prompt[grouping].reindex(prompt_ids).fillna("unknown").astype(str)
            for group in sorted(set(groups)):
                mask = (groups == group).to_numpy()
                row = {"policy": name, "grouping": grouping, "group": group,
                       "prompts": len(set(prompt_ids[mask])), "samples": int(mask.sum())}  # fmt: skip
                for prefix, flagged in judges.items():
                    interval = bootstrap_mean(
                        flagged[mask].astype(float), prompt_ids[mask], seed=seed
                    )
                    row |= {f"{prefix}violation_rate": interval.estimate,
                            f"{prefix}violation_rate_ci_low": interval.low,
                            f"{prefix}violation_rate_ci_high": interval.high}  # fmt: skip
                rows.append(row)
    return pd.DataFrame(rows, columns=list(GROUP_RATE_COLUMNS))


def compare_stages(
    policies: dict[str, ModelArtifact],
    protocol: EvalProtocol,
    side_by_side_prompts: int,
    reusable: Mapping[str, PolicyEvaluation] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate each policy under one protocol; `policies` starts with "base", the protocol's.
    Returns the stage table, the side-by-side generations, and the rates per category and source.

    `reusable` holds evaluations already made under this same protocol, by the fingerprint of
    the policy's weights (`EvalProtocol.reusable`); a policy found there is not evaluated again."""
    results: dict[str, PolicyEvaluation] = {}
    for name, policy in policies.items():
        found = reusable.get(weights_fingerprint(policy.model)) if reusable else None
        if found is not None:
            logger.info(
                "eval/%s reuses the evaluation of %s", name, found.metrics.get("checkpoint")
            )
            results[name] = found
            continue
        results[name] = protocol.evaluate(policy)
    base_generations = results["base"].generations
    rows, previous = [], base_generations
    seed = protocol.sampling.seed
    for name, evaluated in results.items():
        generations = evaluated.generations
        row = stage_row(name, evaluated.metrics, generations, base_generations)
        # Each stage against base and against the stage before it (DPO against PPO).
        row |= paired_deltas("base", generations, base_generations, seed)
        row |= paired_deltas("previous", generations, previous, seed)
        rows.append(row)
        previous = generations
    table = pd.DataFrame(rows)
    sides = pd.DataFrame({"prompt_id": base_generations.prompt_ids,
                          "prompt": [p[-1]["content"] for p in base_generations.prompts],
                          "category": base_generations.categories})  # fmt: skip
    for name, evaluated in results.items():
        generations = evaluated.generations
        sides[f"{name}_response"] = generations.texts
        sides[f"{name}_reward"] = generations.rewards
        sides[f"{name}_label"] = generations.labels
    keep = sides["prompt_id"].drop_duplicates().head(side_by_side_prompts)
    by_group = rates_by_group(results, protocol.eval_prompts, seed)
    return table, sides[sides["prompt_id"].isin(keep)].reset_index(drop=True), by_group


def stage_charts(
    table: pd.DataFrame, ppo_history: pd.DataFrame, gate: dict[str, Any], chaos_threshold: float
) -> dict[str, go.Figure]:
    metrics = ["violation_rate", "win_rate_vs_base", "distinct_2", "eos_rate"]
    by_stage = go.Figure(
        [go.Bar(name=metric, x=table["policy"], y=table[metric]) for metric in metrics],
        layout={"title": "Metrics by stage (same prompts, same seeds)", "barmode": "group"},
    )
    healthy = ppo_history[ppo_history["healthy"].astype(bool)]
    rounds = go.Figure(
        [
            go.Scatter(name="violation rate", x=healthy["round"], y=healthy["violation_rate"], mode="lines+markers"),
            go.Scatter(name="eval reward", x=healthy["round"], y=healthy["reward_mean"], mode="lines+markers", yaxis="y2"),
        ],
        layout={
            "title": f"PPO rounds — gate decision: {gate['decision']} (round {gate['selected_round']})",
            "xaxis": {"title": "round"}, "yaxis": {"title": "violation rate"},
            "yaxis2": {"title": "reward", "overlaying": "y", "side": "right"},
        },
    )  # fmt: skip
    rounds.add_hline(y=chaos_threshold, line_dash="dash", annotation_text="chaos_threshold")
    frontier = go.Figure(
        [
            go.Scatter(name="PPO rounds", x=healthy["kl_to_base"], y=healthy["reward_mean"], mode="lines+markers+text",
                       text=[f"r{r}" for r in healthy["round"]], textposition="top center"),
            go.Scatter(name="stages", x=table["kl_to_base"], y=table["reward_mean"], mode="markers+text",
                       text=table["policy"], textposition="bottom center", marker={"size": 12}),
        ],
        layout={"title": "Reward against KL to base", "xaxis": {"title": "KL to base (nats)"}, "yaxis": {"title": "reward"}},
    )  # fmt: skip
    return {
        "stage_metrics_chart": by_stage,
        "ppo_rounds_chart": rounds,
        "reward_kl_frontier_chart": frontier,
        "reward_sqrt_kl_chart": reward_sqrt_kl_chart(ppo_history, gate),
    }


def overoptimisation_rounds(ppo_history: pd.DataFrame) -> pd.DataFrame:
    """Round, √KL to base, proxy and held-out reward (normalised units) of the healthy rounds;
    an older history without the columns gives them from what it has (held-out NaN)."""
    healthy = ppo_history[ppo_history["healthy"].astype(bool)]
    nan = pd.Series(float("nan"), index=healthy.index)
    return pd.DataFrame({
        "round": healthy["round"].astype(int),
        "checkpoint": healthy["checkpoint"],
        "sqrt_kl_to_base": healthy.get("sqrt_kl_to_base", healthy["kl_to_base"].clip(lower=0) ** 0.5),
        "proxy_reward": healthy.get("proxy_reward", nan),
        "heldout_reward": healthy.get("heldout_reward", nan),
    })  # fmt: skip


def reward_sqrt_kl_chart(ppo_history: pd.DataFrame, gate: dict[str, Any]) -> go.Figure:
    """Gao et al. 2022's picture: proxy and held-out reward against √KL, one point per round,
    the round the gate selected ringed."""
    points = overoptimisation_rounds(ppo_history)
    selected = points[points["round"] == int(gate["selected_round"])]
    labels = [f"r{r}" for r in points["round"]]
    figure = go.Figure(
        [
            go.Scatter(name="proxy (optimised)", x=points["sqrt_kl_to_base"], y=points["proxy_reward"],
                       mode="lines+markers+text", text=labels, textposition="top center"),
            go.Scatter(name="held-out ensemble", x=points["sqrt_kl_to_base"], y=points["heldout_reward"],
                       mode="lines+markers"),
            go.Scatter(name=f"selected by the gate ({gate['decision']})", x=selected["sqrt_kl_to_base"],
                       y=selected["proxy_reward"], mode="markers",
                       marker={"size": 18, "symbol": "circle-open", "line": {"width": 3}}),
        ],
        layout={"title": "Reward against √KL to base: proxy and held-out reward models",
                "xaxis": {"title": "√KL to base (√nats)"}, "yaxis": {"title": "reward (normalised units)"}},
    )  # fmt: skip
    return figure


def _overoptimisation_table(ppo_history: pd.DataFrame, gate: dict[str, Any]) -> str:
    points = overoptimisation_rounds(ppo_history)
    rows = "\n".join(
        f"| {r['round']}{' (selected)' if r['round'] == int(gate['selected_round']) else ''} | "
        f"{r['sqrt_kl_to_base']:.3f} | {r['proxy_reward']:.3f} | {r['heldout_reward']:.3f} |"
        for _, r in points.iterrows()
    )
    return (
        "## Reward against √KL (chart: `reward_sqrt_kl_chart`)\n\n"
        "| round | √KL to base | proxy reward | held-out reward |\n|---|---|---|---|\n"
        f"{rows}\n"
    )


def _rates_by_group_table(by_group: pd.DataFrame) -> str:
    if by_group is None or by_group.empty:
        return ""
    lines = [f"| {r.grouping} | {r.group} | {r.policy} | {r.prompts} | {r.violation_rate:.3f} "
             f"[{r.violation_rate_ci_low:.3f}, {r.violation_rate_ci_high:.3f}] | "
             + ("-" if math.isnan(r.heldout_violation_rate) else
                f"{r.heldout_violation_rate:.3f} [{r.heldout_violation_rate_ci_low:.3f}, "
                f"{r.heldout_violation_rate_ci_high:.3f}]") + " |"
             for r in by_group.itertuples()]  # fmt: skip
    return (
        "\n## Violation rate by category and source (table: `stage_rates_by_group`)\n\n"
        "| by | group | policy | prompts | panel violation rate [95% interval] | held-out judges' "
        "[95% interval] |\n|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )


def render_evaluation_report(
    table: pd.DataFrame,
    gate: dict[str, Any],
    sides: pd.DataFrame,
    ppo_history: pd.DataFrame | None = None,
    by_group: pd.DataFrame | None = None,
    dpo_history: pd.DataFrame | None = None,
) -> str:
    columns = ["policy", "reward_mean", "reward_ci_low", "reward_ci_high", "win_rate_vs_base", "violation_rate",
               "kl_to_base", "probe_perplexity", "distinct_1", "distinct_2", "length_mean", "length_std", "eos_rate",
               "reward_spread_within_prompt", "label_disagreement_within_prompt"]  # fmt: skip
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
    rows = "\n".join(
        "| "
        + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        + " |"
        for _, row in table.iterrows()
    )
    examples = "\n".join(
        f"- **{r['prompt']}** ({r['category']})\n" + "".join(
            f"  - {name}: {r[f'{name}_response']!r} ({r[f'{name}_label']})\n" for name in table["policy"]
        )
        for _, r in sides.drop_duplicates("prompt_id").head(5).iterrows()
    )  # fmt: skip
    return (
        "# Evaluation: every stage on the same prompts and seeds\n\n"
        f"Gate decision: `{gate['decision']}`, DPO started from round {gate['selected_round']} "
        f"(`{gate['selected_checkpoint']}`).{_dpo_pairs_line(dpo_history)}\n\n{header}\n{rows}\n\n"
        f"## Side by side\n\n{examples}\n"
        + _rates_by_group_table(by_group)
        + _judges_table(table, ppo_history)
        + (f"\n{_overoptimisation_table(ppo_history, gate)}" if ppo_history is not None else "")
    )


def _dpo_pairs_line(dpo_history: pd.DataFrame | None) -> str:
    """Which pairs DPO settled on (`dpo_refinement.pairs`), from its history."""
    if dpo_history is None or "pairs" not in dpo_history or dpo_history.empty:
        return ""
    last = dpo_history.iloc[-1]
    return (f" DPO settled on `{last['pairs']}` pairs: {int(last['pairs_count'])}, of which "
            f"{int(last['onpolicy_pairs_count'])} are the start policy's own answers.")  # fmt: skip


def _judges_table(table: pd.DataFrame, ppo_history: pd.DataFrame | None) -> str:
    """The panel PPO was penalised by against the held-out judges it never saw, per stage and
    per PPO round (empty when no judge is held out): the proxy falling while the held-out rate
    does not is judge hacking (Gao et al. 2022, proxy against gold)."""
    if "heldout_violation_rate" not in table:
        return ""
    lines = ["\n## Judges: the panel PPO saw against the held-out judges\n",
             "| policy | panel violation rate [95% CI] | held-out violation rate [95% CI] |",
             "|---|---|---|"]  # fmt: skip
    for _, row in table.iterrows():
        lines.append(
            f"| {row['policy']} | {row['violation_rate']:.3f} [{row['violation_rate_ci_low']:.3f}, "
            f"{row['violation_rate_ci_high']:.3f}] | {row['heldout_violation_rate']:.3f} "
            f"[{row['heldout_violation_rate_ci_low']:.3f}, "
            f"{row['heldout_violation_rate_ci_high']:.3f}] |"
        )
    if ppo_history is not None and "heldout_violation_rate" in ppo_history:
        lines += [
            "",
            "| PPO round | panel violation rate | held-out violation rate |",
            "|---|---|---|",
        ]
        lines += [f"| {int(r['round'])} | {r['violation_rate']:.3f} | "
                  f"{r['heldout_violation_rate']:.3f} |" for _, r in ppo_history.iterrows()]  # fmt: skip
    return "\n".join(lines) + "\n"
