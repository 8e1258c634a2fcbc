"""Thin adapter from the catalog to `alignment_stages.judges.learned`."""

from typing import Any

import pandas as pd

from alignment_stages.judges.learned import SafetyJudgeParams, train_safety_classifier


def train_safety_judge_node(
    curated_pairs: pd.DataFrame, labelled_answers: pd.DataFrame, params: SafetyJudgeParams
) -> dict[str, Any]:
    classifier, metrics = train_safety_classifier(curated_pairs, params, labelled_answers)
    return {"safety_classifier": classifier, "safety_classifier_metrics": metrics}
