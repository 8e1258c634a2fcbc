"""On-policy preference pairs: a policy's own answers, ranked by the judges and the reward models.

Preference fine-tuning learns most from the policy's own samples (Tajwar et al. 2024,
"Preference fine-tuning of LLMs should leverage suboptimal, on-policy data"; Tülu 3's mostly
on-policy mix, Lambert et al. 2024): a reward model ranks best the answers it was trained on,
and DPO moves a policy most where its own answers are.

Each prompt was answered k times (`stages.preference_sampling`), and every answer carries the
proxy panel's label, the held-out judges' label and a reward-ensemble score. One pair per prompt:
- chosen: an answer the panel does not flag, the one the ensemble ranks highest;
- rejected: a flagged answer (the lowest ranked of them), else the lowest ranked answer, when
  the ensemble puts it at least `min_margin` below the chosen one.

Only the proxy panel's labels form pairs. The held-out judges' labels are kept beside them but
never used: a reward model trained on them would carry the held-out judges into PPO's reward,
and they would stop being a measurement PPO cannot game (Gao et al. 2022).

A prompt gives no pair when every answer is flagged (nothing to choose) or when its answers all
agree (no flag among them and no ranking margin). Both are counted in the report.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pandas as pd
from pydantic import Field, model_validator

from alignment_stages.models.config import AnswerSampleParams
from alignment_stages.parameters import check_category_mix

SOURCE_FORMAT = "onpolicy"
# Why a prompt gave no pair.
ALL_FLAGGED = "all_flagged"
ALL_AGREE = "all_agree"
# The columns of `onpolicy_pairs`: the curated pairs' own (so the reward model and DPO read
# either), then each side's labels, the ranking margin and the policy that answered.
ONPOLICY_COLUMNS = (
    "pair_id", "source", "source_format", "record_index", "prompt_messages", "prompt_text",
    "chosen", "rejected", "chosen_score", "rejected_score", "chosen_safe", "rejected_safe",
    "category", "chosen_label", "rejected_label", "chosen_heldout_label",
    "rejected_heldout_label", "chosen_guided", "rejected_guided", "margin", "policy",
    "policy_weights",
)  # fmt: skip


class OnPolicyParams(AnswerSampleParams):
    """`preference_sampling`: how a policy answers its training prompts to make pairs."""

    samples_per_prompt: int = Field(4, ge=2, description="answers per prompt (k)")
    min_margin: float = Field(
        0.5, ge=0, description="ensemble margin (in the proxy's standard deviations) that "
        "makes a pair of two unflagged answers",
    )  # fmt: skip
    guide_system_prompt: str | None = Field(
        None, description="a system prompt seen while sampling `guided_samples` of the k "
        "answers, never kept in the pair's prompt: the model's own answers in its own style "
        "when told how to behave, learned as if untold (context distillation, Askell et al. "
        "2021). null: every answer is unguided",
    )  # fmt: skip
    guide_answer_prefix: str | None = Field(
        None, description="an opening every guided answer is made to start with; the model "
        "writes the rest, and the pair keeps both. Whether a model refuses is decided in its "
        "first tokens (Qi et al. 2024, 'Safety Alignment Should Be Made More Than Just a Few "
        "Tokens Deep'): a refusal opener gives the policy's own refusals where it never samples "
        "one. The judges read the whole answer, so an opener the model then undoes is flagged, "
        "and on a benign prompt the refusal is flagged too: a rejected answer that teaches "
        "against over-refusal. null: no opening",
    )  # fmt: skip
    guided_samples: int = Field(0, ge=0, description="of the k answers, how many are guided")
    category_mix: dict[str, float] | None = Field(
        None, description="share of each prompt category among the `prompts` drawn, e.g. "
        "{unsafe: 0.5, benign: 0.5}, as `ppo.category_mix` shares PPO's batches. A prompt gives "
        "at most one pair, so a uniform draw gives pairs in the training prompts' proportions "
        "(28% unsafe in conf/smollm2's). null: a uniform draw",
    )  # fmt: skip
    guide_categories: list[str] | None = Field(
        None, description="the prompt categories whose answers are guided; the others' answers "
        "are all unguided. null: every prompt's",
    )  # fmt: skip

    @model_validator(mode="after")
    def _guidance_leaves_own_answers(self) -> OnPolicyParams:
        if self.guided_samples and not (self.guide_system_prompt or self.guide_answer_prefix):
            raise ValueError("guided_samples > 0 needs a guide_system_prompt or a "
                             "guide_answer_prefix")  # fmt: skip
        if self.category_mix is not None:
            check_category_mix(self.category_mix, self.prompts, "{prompts} prompts")
        if self.guide_answer_prefix is not None and not self.guide_answer_prefix.strip():
            raise ValueError("guide_answer_prefix must hold text, or be null")
        if self.guided_samples >= self.samples_per_prompt:
            raise ValueError(
                f"guided_samples ({self.guided_samples}) must leave at least one unguided "
                f"answer of samples_per_prompt ({self.samples_per_prompt})"
            )
        return self


def form_onpolicy_pairs(
    answers: pd.DataFrame, min_margin: float, policy: str, policy_weights: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Pairs from judged, scored answers (`prompt_index`, `prompt_messages`, `category`,
    `answer`, `guided`, `label`, `heldout_label`, `reward`; reward NaN where no ensemble ranked
    them), and the counts of the report."""
    rows, no_pair = [], {ALL_FLAGGED: 0, ALL_AGREE: 0}
    for index, group in answers.groupby("prompt_index", sort=True):
        flagged = group["label"] == "violation"
        kept = group[~flagged]
        if kept.empty:
            no_pair[ALL_FLAGGED] += 1
            continue
        chosen = _ranked(kept).iloc[0]
        if flagged.any():
            rejected = _ranked(group[flagged]).iloc[-1]
        else:
            rejected = _ranked(group).iloc[-1]
            margin = chosen["reward"] - rejected["reward"]
            if not margin >= min_margin or rejected["answer"] == chosen["answer"]:  # NaN too
                no_pair[ALL_AGREE] += 1
                continue
        rows.append(_pair(index, chosen, rejected, policy, policy_weights))
    pairs = pd.DataFrame.from_records(rows, columns=list(ONPOLICY_COLUMNS), nrows=len(rows))
    report = {
        "policy": policy,
        "policy_weights": policy_weights,
        "prompts": int(answers["prompt_index"].nunique()),
        "answers": len(answers),
        "answers_flagged": int((answers["label"] == "violation").sum()),
        "pairs": len(pairs),
        "pairs_by_category": {str(k): int(v) for k, v in pairs["category"].value_counts().items()},
        "pairs_with_flagged_rejected": int((pairs["rejected_label"] == "violation").sum()),
        "no_pair": no_pair,
    }
    return pairs, report


def _ranked(answers: pd.DataFrame) -> pd.DataFrame:
    """Highest reward first; unscored answers keep their sampled order (stable sort)."""
    return answers.sort_values("reward", ascending=False, kind="stable", na_position="last")


def _pair(index: int, chosen: pd.Series, rejected: pd.Series, policy: str, weights: str) -> tuple:
    messages = list(chosen["prompt_messages"])
    prompt_text = messages[-1]["content"]
    pair_id = hashlib.sha256(
        f"{weights}|{prompt_text}|{chosen['answer']}|{rejected['answer']}".encode()
    ).hexdigest()[:16]
    margin = chosen["reward"] - rejected["reward"]
    return (
        pair_id, f"onpolicy/{policy}", SOURCE_FORMAT, int(index), messages, prompt_text,
        chosen["answer"], rejected["answer"], _score(chosen), _score(rejected), True,
        False if rejected["label"] == "violation" else None, chosen["category"],
        chosen["label"], rejected["label"], chosen.get("heldout_label"),
        rejected.get("heldout_label"), bool(chosen["guided"]), bool(rejected["guided"]),
        None if math.isnan(margin) else float(margin), policy, weights,
    )  # fmt: skip


def _score(answer: pd.Series) -> float | None:
    return None if math.isnan(answer["reward"]) else float(answer["reward"])
