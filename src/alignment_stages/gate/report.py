"""`gate_report`: the decision in a practitioner's terms, with the numbers behind it."""

from __future__ import annotations

import pandas as pd

from alignment_stages.gate.rules import GateDecision

HEADLINES = {
    "continue_shaping": "Still chaotic → keep shaping with PPO. DPO is not run yet.",
    "switch_to_refinement": "Behaviour settled, or PPO's gains fell below its risks → settle with DPO.",
    "rollback_and_switch": "Reward hacking or capability loss seen → roll back to the last healthy round and settle with DPO.",
    "halt": "Unstable beyond tolerance and still chaotic → stop. Neither more PPO nor DPO is safe yet.",
}


def _confidence(decision: GateDecision) -> float:
    return next((s.confidence for s in decision.signals), 0.95)


def render_gate_report(decision: GateDecision, history: pd.DataFrame) -> str:
    lines = [
        "# Behaviour-stability gate",
        "",
        f"**Decision: `{decision.decision}`** — {HEADLINES[decision.decision]}",
        "",
        f"Selected policy: round {decision.selected_round} (`{decision.selected_checkpoint}`"
        + (
            f", ppo_round_policies version `{decision.checkpoint_version}`)"
            if decision.checkpoint_version
            else ")"
        ),
        "",
        "## Why",
        "",
        *[f"- {reason}" for reason in decision.reasons],
        "",
        "## Signals",
        "",
        f"Each interval is two-sided at {_confidence(decision):.0%}. A chaos verdict, gains below "
        "costs and a hacking sign count only when their interval clears the threshold.",
        "",
        "| signal | value | interval | threshold | verdict |",
        "|---|---|---|---|---|",
        *[
            f"| {s.name} | {s.value:.4g} | [{s.low:.4g}, {s.high:.4g}] | {s.threshold:.4g} | "
            f"{s.verdict} |"
            for s in decision.signals
        ],
        "",
        "## PPO rounds",
        "",
        "| round | reward | violation rate | KL to base | probe perplexity | distinct-2 | EOS rate | label flips |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in history.iterrows():
        if not bool(row["healthy"]):
            lines.append(
                f"| {int(row['round'])} | diverged: {row.get('stop_reason', '')} | | | | | | |"
            )
            continue
        lines.append(
            f"| {int(row['round'])} | {row['reward_mean']:.3f} | {row['violation_rate']:.3f} | "
            f"{row['kl_to_base']:.2f} | {row['probe_perplexity']:.3f} | {row['distinct_2']:.3f} | "
            f"{row['eos_rate']:.3f} | {row['label_flip_rate']:.3f} |"
        )
    return "\n".join(lines) + "\n"
