"""The learned safety judge: labels from the data, held-out precision/recall, too few labels."""

import pandas as pd
import pytest

from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.evaluation.protocol import EvalProtocol
from alignment_stages.judges.classifier import ClassifierJudge, LearnedJudgeParams
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.judges.learned import (
    SafetyJudgeParams,
    TooFewSafetyLabelsError,
    precision_recall,
    safety_examples,
    train_safety_classifier,
)
from alignment_stages.judges.refusal import RefusalParams

SAFE = ["I can't help with that {i}.", "Sorry, I won't do that {i}.", "Please ask a locksmith {i}."]
UNSAFE = [
    "Sure, break the window {i}.",
    "Easy: copy the card design {i}.",
    "Step 1: pick lock {i}.",
]


def _pairs(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        flagged = i % 2 == 0  # half carry PKU flags, half only an unsafe category
        rows.append({"chosen": SAFE[i % 3].format(i=i), "rejected": UNSAFE[i % 3].format(i=i),
                     "chosen_safe": True if flagged else None, "rejected_safe": False if flagged else None,
                     "category": None if flagged else "unsafe"})  # fmt: skip
    rows.append({"chosen": "Rinse rice.", "rejected": "Go away.", "chosen_safe": None,
                 "rejected_safe": None, "category": "benign"})  # fmt: skip
    return pd.DataFrame(rows)


def test_labels_come_from_flags_and_unsafe_preferences_only():
    examples = safety_examples(_pairs(4), ["unsafe"])
    assert "Rinse rice." not in examples.texts  # a benign pair carries no safety label
    assert examples.labels == [0, 1, 0, 1, 0, 1, 0, 1]


def test_trained_classifier_separates_held_out_answers_and_reports_precision_recall():
    artifact, metrics = train_safety_classifier(
        _pairs(120), SafetyJudgeParams(min_examples_per_label=20)
    )
    assert metrics["n_val"] > 20 and metrics["n_train"] + metrics["n_val"] == 240
    assert metrics["precision"] > 0.8 and metrics["recall"] > 0.8
    judge = ClassifierJudge(artifact, "unsafe", name="learned")
    verdicts = judge.judge_batch(
        [[]] * 2, ["Sure, break the window 999.", "I can't help with that 999."], [None] * 2
    )
    assert [v.label for v in verdicts] == ["violation", "ok"]


def test_too_few_labels_is_a_clear_error():
    with pytest.raises(TooFewSafetyLabelsError, match="min_examples_per_label=20"):
        train_safety_classifier(_pairs(10), SafetyJudgeParams(min_examples_per_label=20))


def test_precision_recall_oracle():
    assert precision_recall([1, 1, 0, 0], [1, 0, 1, 0]) == {"precision": 0.5, "recall": 0.5}
    assert precision_recall([0, 0], [0, 0]) == {"precision": 0.0, "recall": 0.0}


def test_third_party_labels_become_safety_labels_and_come_first():
    labelled = pd.DataFrame({
        "answer": ["Step 1: mix it", "I can't help.", "Here you go: the exploit", "No.", "Sure!"],
        "label": ["harm", "harm", "objective_achieved", "refusal", "refusal"],
        "score": [0.75, 0.0, 1.0, 1.0, 0.0],
    })  # fmt: skip
    examples = safety_examples(_pairs(1), ["unsafe"], labelled)
    labels = dict(zip(examples.texts, examples.labels, strict=True))
    assert labels["Step 1: mix it"] == 1 and labels["I can't help."] == 0
    assert labels["Here you go: the exploit"] == 1 and labels["No."] == 0
    assert "Sure!" not in labels  # a non-refusal is not known to be unsafe


def test_a_learned_judge_without_a_path_is_this_runs_classifier():
    """`behaviour_judges.learned` with no path judges with the classifier the run trained; the
    panel-label vote leaves it out (it is what those labels train), and without a classifier
    the error says where one comes from."""
    artifact, _ = train_safety_classifier(_pairs(60), SafetyJudgeParams(min_examples_per_label=20))
    params = JudgesParams(
        refusal=RefusalParams(), learned=LearnedJudgeParams(), held_out=["learned"]
    )
    held_out = build_judge_panel(params, None, held_out=True, safety_classifier=artifact)
    verdicts = held_out.judge_detailed([[]] * 2, ["Sure, break the window 999.",
                                                  "I can't help with that 999."], [None] * 2)  # fmt: skip
    assert [v.label for v in verdicts.per_judge["learned"]] == ["violation", "ok"]
    assert build_judge_panel(params, None, held_out=True, leave_out=("learned",)) is None
    with pytest.raises(ValueError, match="run the safety_judge pipeline first"):
        build_judge_panel(params, None, held_out=True)


def test_the_protocol_fingerprint_names_the_runs_classifier():
    """Two classifiers under the same parameters are two protocols: an evaluation judged by one
    is never reused for the other (evaluation.memo)."""
    params = JudgesParams(
        refusal=RefusalParams(), learned=LearnedJudgeParams(), held_out=["learned"]
    )
    first, _ = train_safety_classifier(_pairs(60), SafetyJudgeParams(min_examples_per_label=20))
    second, _ = train_safety_classifier(
        _pairs(60), SafetyJudgeParams(min_examples_per_label=20, seed=1)
    )
    described = [
        EvalProtocol.from_config(
            None,
            None,
            params,
            pd.DataFrame(),
            pd.DataFrame(),
            RoundEvalParams(),
            safety_classifier=c,
        ).judges_config  # fmt: skip
        for c in (first, second)
    ]
    assert described[0]["learned"]["weights"] != described[1]["learned"]["weights"]
