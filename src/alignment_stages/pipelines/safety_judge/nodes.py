"""Thin adapters from the catalog to `alignment_stages.judges.learned` and `.panel_labels`."""

from typing import Any

import pandas as pd

from alignment_stages.judges.config import JudgesParams
from alignment_stages.judges.learned import SafetyJudgeParams, train_safety_classifier
from alignment_stages.judges.panel_labels import (
    LABELLED_COLUMNS,
    panel_agreed_labels,
    sample_answers,
)
from alignment_stages.models.artifacts import ModelArtifact


def label_policy_answers(
    base_policy: ModelArtifact,
    ppo_prompts: pd.DataFrame,
    params: SafetyJudgeParams,
    judges: JudgesParams,
) -> pd.DataFrame:
    """The base policy's answers where the judges agree; empty without `panel_samples`."""
    if params.panel_samples is None:
        return pd.DataFrame(columns=list(LABELLED_COLUMNS))
    answers = sample_answers(base_policy, ppo_prompts, params.panel_samples)
    return panel_agreed_labels(answers, judges, params.panel_samples.min_agreeing)


def train_safety_judge_node(
    curated_pairs: pd.DataFrame,
    labelled_answers: pd.DataFrame,
    panel_labelled_answers: pd.DataFrame,
    params: SafetyJudgeParams,
) -> dict[str, Any]:
    labelled = pd.concat([labelled_answers, panel_labelled_answers], ignore_index=True)
    classifier, metrics = train_safety_classifier(curated_pairs, params, labelled)
    metrics["panel_labelled_answers"] = len(panel_labelled_answers)
    return {"safety_classifier": classifier, "safety_classifier_metrics": metrics}
