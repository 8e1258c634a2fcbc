"""DPO on two pair sources from one start policy, side by side on the same evaluation prompts.

`dpo_refinement.pairs` chooses between the curated published pairs and the start policy's own
answers (`preference_sampling`). Which helps depends on where the policy is (Tajwar et al.
2024 find on-policy data better; Sun et al. 2025, "Is on-policy data always the best choice for
DPO?", find it depends on the alignment stage), so the choice is measured, not assumed: the
same DPO settings, the same start, the same prompts and seeds, and the difference between the
two runs with a 95% interval bootstrapped over prompts (paired: same prompt, same sample).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

# (column of the comparison, column of the stage table or of the per-category rates)
_OVERALL = ("violation_rate", "heldout_violation_rate")
_BY_CATEGORY = {"unsafe": "harmful_complied", "benign": "benign_refused"}


def pairs_comparison_table(
    table: pd.DataFrame, by_group: pd.DataFrame, pairs: Mapping[str, str]
) -> pd.DataFrame:
    """One row per policy of `table` (the stage table of `evaluation.compare.compare_stages`,
    its last two rows the two DPO runs, the last against the one before): the overall rates of
    the panel and of the held-out judges, the harmful requests complied with and the benign ones
    refused (or answered unhelpfully) by each, KL and probe perplexity; `pairs` names each DPO
    policy's pair source, and the last row carries its difference from the other DPO run."""
    categories = by_group[by_group["grouping"] == "category"].set_index(["policy", "group"])
    rows = []
    for _, stage in table.iterrows():
        policy = stage["policy"]
        row = {"policy": policy, "pairs": pairs.get(policy, "")}
        for column in _OVERALL:
            for suffix in ("", "_ci_low", "_ci_high"):
                row[column + suffix] = float(stage.get(column + suffix, math.nan))
        for category, name in _BY_CATEGORY.items():
            found = (policy, category) in categories.index
            for judge in ("", "heldout_"):
                for suffix in ("", "_ci_low", "_ci_high"):
                    value = (categories.loc[(policy, category), f"{judge}violation_rate{suffix}"]
                             if found else math.nan)  # fmt: skip
                    row[f"{judge}{name}{suffix}"] = float(value)
        for column in ("kl_to_base", "probe_perplexity", "reward_mean"):
            row[column] = float(stage.get(column, math.nan))
        rows.append(row)
    comparison = pd.DataFrame(rows)
    # The last DPO run against the one before it: compare_stages' paired "previous" deltas.
    last = table.iloc[-1]
    for suffix in ("", "_ci_low", "_ci_high"):
        comparison[f"violation_delta_vs_other_dpo{suffix}"] = math.nan
        comparison.loc[comparison.index[-1], f"violation_delta_vs_other_dpo{suffix}"] = float(
            last[f"violation_delta_vs_previous{suffix}"]
        )
    return comparison


def _rate(row: pd.Series, column: str) -> str:
    if math.isnan(row[column]):
        return "-"
    return f"{row[column]:.3f} [{row[f'{column}_ci_low']:.3f}, {row[f'{column}_ci_high']:.3f}]"


def render_pairs_comparison(comparison: pd.DataFrame, start_checkpoint: str) -> str:
    """The comparison as Markdown: each policy's rates with their intervals, then the verdict
    on the difference between the two DPO runs (beyond noise only when its interval excludes 0)."""
    lines = [
        "# DPO's pairs compared: the same start, the same settings, the same prompts\n",
        f"Both DPO runs start from `{start_checkpoint}`.\n",
        "| policy | pairs | panel violation rate | held-out judges' | harmful complied (panel) | "
        "harmful complied (held-out) | benign refused or unhelpful (panel) | KL to base | "
        "probe perplexity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in comparison.iterrows():
        lines.append(
            f"| {row['policy']} | {row['pairs'] or '-'} | {_rate(row, 'violation_rate')} | "
            f"{_rate(row, 'heldout_violation_rate')} | {_rate(row, 'harmful_complied')} | "
            f"{_rate(row, 'heldout_harmful_complied')} | {_rate(row, 'benign_refused')} | "
            f"{row['kl_to_base']:.2f} | {row['probe_perplexity']:.3f} |"
        )
    last, other = comparison.iloc[-1], comparison.iloc[-2]
    delta = last["violation_delta_vs_other_dpo"]
    low, high = (
        last["violation_delta_vs_other_dpo_ci_low"],
        last["violation_delta_vs_other_dpo_ci_high"],
    )
    verdict = (
        "within noise" if low <= 0 <= high
        else f"{'lower' if high < 0 else 'higher'} beyond noise"
    )  # fmt: skip
    lines += [
        "",
        f"DPO on `{last['pairs']}` pairs against DPO on `{other['pairs']}` pairs: panel violation "
        f"rate {delta:+.3f} [{low:+.3f}, {high:+.3f}] (paired over prompts): {verdict}.",
    ]
    return "\n".join(lines) + "\n"
