"""The `preference_sampling` stage: a policy answers its training prompts k times, the judges and
the reward ensemble read every answer, and the answers become on-policy pairs
(`curation.onpolicy`) with their lineage: the policy's name and the fingerprint of its weights.

It runs twice in `full_alignment`: from the base, before the reward model, where only the judges
rank (no reward model exists yet), and from the round the gate selected, where the ensemble
ranks too and DPO may settle on those pairs (`dpo_refinement.pairs`).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd

from alignment_stages.curation.onpolicy import OnPolicyParams, form_onpolicy_pairs
from alignment_stages.evaluation.memo import weights_fingerprint
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.judges.panel_labels import sample_answers
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.parameters import category_counts
from alignment_stages.reward.ensemble import RewardEnsemble


def sample_onpolicy_pairs(
    policy: ModelArtifact,
    policy_name: str,
    prompts: pd.DataFrame,
    params: OnPolicyParams,
    judges: JudgesParams,
    *,
    safety_classifier: ModelArtifact | None = None,
    ensemble: RewardEnsemble | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """(pairs, report, every judged answer). Without an `ensemble` only the judges rank."""
    answers = _sample(policy, prompts, params)
    reward_model = ensemble.proxy.artifact if ensemble is not None else None
    panel = build_judge_panel(judges, reward_model, safety_classifier=safety_classifier)
    held_out = build_judge_panel(judges, reward_model, held_out=True,
                                 safety_classifier=safety_classifier)  # fmt: skip
    prompt_messages = list(answers["prompt_messages"])
    judged = panel.judge_detailed(prompt_messages, list(answers["answer"]),
                                  list(answers["category"]))  # fmt: skip
    answers["label"] = [v.label for v in judged.panel]
    answers["category"] = judged.categories
    answers["heldout_label"] = (
        [v.label for v in held_out.judge_detailed(prompt_messages, list(answers["answer"]),
                                                  judged.categories).panel]
        if held_out is not None else None
    )  # fmt: skip
    answers["reward"] = np.nan
    if ensemble is not None:
        # At the sampling precision, as the evaluation scores.
        answers["reward"] = ensemble.ranking_scores(
            prompt_messages, list(answers["answer"]), params.precision
        )
    pairs, report = form_onpolicy_pairs(
        answers, params.min_margin, policy_name, weights_fingerprint(policy.model)
    )
    report["ranked_by"] = "judges and reward ensemble" if ensemble is not None else "judges"
    report["guided_answers"] = int(answers["guided"].sum())
    report["flagged_by_guidance"] = {
        str(guided): float((group["label"] == "violation").mean())
        for guided, group in answers.groupby("guided")
    }
    return pairs, report, answers


def _sample(policy: ModelArtifact, prompts: pd.DataFrame, params: OnPolicyParams) -> pd.DataFrame:
    """k answers per prompt: `k - guided_samples` as the prompt stands, the rest guided on the
    prompts of `guide_categories` (all, when null) and unguided on the others: the guide system
    prompt seen while sampling (never kept in the pair), the guide opening continued (kept, as
    the answer's start)."""
    guides = params.guide_system_prompt or params.guide_answer_prefix
    guided = params.guided_samples if guides else 0
    # The prompts are drawn once, so guided and unguided answers answer the same ones.
    prompts = prompts.iloc[_draw_prompts(prompts, params)].reset_index(drop=True)
    categories = params.guide_categories
    eligible = (prompts["category"].isin(categories).to_numpy() if categories is not None
                else np.ones(len(prompts), dtype=bool))  # fmt: skip
    # (prompts answered, guided, answers each, seed): the unguided answers of every prompt, then
    # the rest, guided where eligible and unguided elsewhere.
    plan = ((np.ones(len(prompts), dtype=bool), False, params.samples_per_prompt - guided,
             params.seed),
            (eligible, True, guided, params.seed + 1),
            (~eligible, False, guided, params.seed + 1))  # fmt: skip
    parts = []
    for mask, guide, count, seed in plan:
        if count == 0 or not mask.any():
            continue
        table = prompts[mask].reset_index(drop=True)
        sampling = params.model_copy(
            update={"samples_per_prompt": count, "seed": seed, "prompts": len(table)}
        )
        part = sample_answers(policy, table, sampling,
                              params.guide_system_prompt if guide else None,
                              params.guide_answer_prefix if guide else None)  # fmt: skip
        part["prompt_index"] = np.flatnonzero(mask)[part["prompt_index"].to_numpy()]
        part["guided"] = guide
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _draw_prompts(prompts: pd.DataFrame, params: OnPolicyParams) -> list[int]:
    """The rows answered: `params.prompts` drawn with its seed, uniformly or in the shares of
    `category_mix` (a category with fewer prompts than its share gives all it has)."""
    rng = random.Random(params.seed)
    if params.category_mix is None:
        return sorted(rng.sample(range(len(prompts)), min(params.prompts, len(prompts))))
    categories = prompts["category"].to_numpy() if "category" in prompts else np.array([])
    rows: list[int] = []
    for category, count in category_counts(params.category_mix, params.prompts).items():
        pool = np.flatnonzero(categories == category).tolist()
        if count and not pool:
            raise ValueError(
                f"preference_sampling.category_mix asks for {category!r} prompts, but the "
                f"prompts have none (they have {sorted(set(categories)) or 'no categories'})"
            )
        rows += rng.sample(pool, min(count, len(pool)))
    return sorted(rows)
