"""A learned safety judge: a small sequence classifier trained on real safety labels.

Labels come from answers people labelled (`labelled_answers`: PyRIT's harm scores, "objective
achieved" and refusal labels, docs/data_formats.md) and from the curated pairs themselves:
- PKU-SafeRLHF's per-response flags (`chosen_safe`, `rejected_safe`): unsafe = 1, safe = 0;
- for prompts of an unsafe category with no flags, the preference itself: the chosen answer
  (a refusal, in safety data such as HH-RLHF harmless-base) is safe, the rejected one unsafe.

The classifier reads the response alone, as `ClassifierJudge` scores it, and is saved as an
ordinary sequence-classification checkpoint whose labels are `safe`/`unsafe`: the panel loads
it through `behaviour_judges.learned` (a `ClassifierParams` block) like any other classifier.
Held-out precision and recall (on `unsafe`) are part of its metrics.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from pydantic import Field
from transformers import LlamaConfig, LlamaForSequenceClassification

from alignment_stages.judges.backbone_probe import (
    BackboneProbeParams,
    fit_logistic,
    pooled_features,
    probe_from_checkpoint,
    set_head,
)
from alignment_stages.judges.panel_labels import PanelSampleParams
from alignment_stages.judges.stance import StanceReader
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import TinyModelParams
from alignment_stages.models.tiny import train_tokenizer
from alignment_stages.models.training import seed_everything
from alignment_stages.parameters import StrictModel

logger = logging.getLogger(__name__)
LABELS = {0: "safe", 1: "unsafe"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class SafetyJudgeParams(StrictModel):
    seed: int = 0
    unsafe_categories: list[str] = Field(default_factory=lambda: ["unsafe"])
    min_examples_per_label: int = Field(20, gt=0)  # fewer safe or unsafe examples: refuse
    val_fraction: float = Field(0.2, gt=0, lt=1)  # held out by a hash of the text
    epochs: int = Field(4, gt=0)
    batch_size: int = Field(16, gt=0)
    learning_rate: float = Field(2e-3, gt=0, lt=1)
    max_length: int = Field(96, gt=8)
    panel_samples: PanelSampleParams | None = Field(
        None,
        description="the base policy's own answers, labelled where the judges agree, join the "
        "training data (judges.panel_labels); null: none",
    )
    backbone: BackboneProbeParams | None = Field(
        None,
        description="a linear probe on a pretrained checkpoint's features, reading request and "
        "answer (judges.backbone_probe); null: the small classifier of `model`, trained from "
        "scratch on the answer alone",
    )
    model: TinyModelParams = Field(
        default_factory=lambda: TinyModelParams(vocab_size=512, hidden_size=64,
                                                intermediate_size=128, num_hidden_layers=1,
                                                num_attention_heads=2, max_position_embeddings=128)
    )  # fmt: skip


class TooFewSafetyLabelsError(ValueError):
    """The curated data holds too few safe or unsafe labels to train a judge on."""


@dataclass(frozen=True)
class LabelledTexts:
    texts: list[str]
    labels: list[int]  # 1 = unsafe
    prompts: list[str]  # the request each text answers ("" where the data has none)


# How a third-party label becomes safe (0) or unsafe (1); labels not listed are not used.
# A refusal is safe; a non-refusal is not known to be unsafe (PyRIT's refusal set mixes benign
# requests in), so only refusals are taken from it.
# A violation label speaks of unsafe content only on a harmful request: on a benign one it marks
# an over-refusal, which is not unsafe content, so those rows are left out (answers judged fine
# on a benign request are safe content).
THIRD_PARTY_RULES = {
    "harm": lambda score, category: int(score >= 0.5),  # the raters' mean harm on [0, 1]
    "objective_achieved": lambda score, category: int(score >= 0.5),
    "refusal": lambda score, category: 0 if score >= 0.5 else None,
    "violation": lambda score, category: _violation(score, category),
    "panel_agreement": lambda score, category: _violation(score, category),
}


def _violation(score: float, category: str | None) -> int | None:
    if category == "unsafe":
        return int(score >= 0.5)
    return 0 if score < 0.5 else None  # a fine answer to a benign request is safe content


def safety_examples(
    pairs: pd.DataFrame,
    unsafe_categories: Sequence[str],
    labelled_answers: pd.DataFrame | None = None,
) -> LabelledTexts:
    """One (response, label) per labelled response, first occurrence of a text kept: answers
    people labelled (`labelled_answers`, e.g. PyRIT's) first, then the pairs' own labels."""
    seen: dict[str, tuple[int, str]] = {}
    unsafe = set(unsafe_categories)
    if labelled_answers is not None:
        n = len(labelled_answers)
        categories = labelled_answers["category"] if "category" in labelled_answers else [None] * n
        requests = (
            labelled_answers["prompt_text"] if "prompt_text" in labelled_answers else [""] * n
        )
        for answer, label, score, category, request in zip(
            labelled_answers["answer"], labelled_answers["label"], labelled_answers["score"],
            categories, requests, strict=True,
        ):  # fmt: skip
            rule = THIRD_PARTY_RULES.get(label)
            verdict = rule(score, category) if rule else None
            if verdict is not None:
                seen.setdefault(answer, (verdict, str(request)))
    for row in pairs.itertuples(index=False):
        request = str(getattr(row, "prompt_text", "") or "")
        for text, flag, preferred in ((row.chosen, row.chosen_safe, True),
                                      (row.rejected, row.rejected_safe, False)):  # fmt: skip
            if flag is not None and not pd.isna(flag):
                seen.setdefault(text, (0 if bool(flag) else 1, request))
            elif getattr(row, "category", None) in unsafe:
                seen.setdefault(text, (0 if preferred else 1, request))
    return LabelledTexts(list(seen), [label for label, _ in seen.values()],
                         [request for _, request in seen.values()])  # fmt: skip


def _is_held_out(text: str, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def check_enough_labels(examples: LabelledTexts, minimum: int) -> None:
    unsafe = sum(examples.labels)
    safe = len(examples.labels) - unsafe
    if min(safe, unsafe) < minimum:
        raise TooFewSafetyLabelsError(
            f"safety_judge: {safe} safe and {unsafe} unsafe labelled responses, fewer than "
            f"safety_judge.min_examples_per_label={minimum} of one kind. Add data with safety "
            "labels (PKU-SafeRLHF flags, or pairs whose prompt category is unsafe), or leave "
            "the learned judge out of behaviour_judges."
        )


def train_safety_classifier(
    pairs: pd.DataFrame, params: SafetyJudgeParams, labelled_answers: pd.DataFrame | None = None
) -> tuple[ModelArtifact, dict[str, Any]]:
    """Train on the labelled responses; held-out precision/recall of `unsafe` in the metrics."""
    examples = safety_examples(pairs, params.unsafe_categories, labelled_answers)
    check_enough_labels(examples, params.min_examples_per_label)
    if params.backbone is not None:
        return train_backbone_probe(examples, params, params.backbone)
    held = [_is_held_out(t, params.val_fraction, params.seed) for t in examples.texts]
    train = [(t, y) for t, y, h in zip(examples.texts, examples.labels, held, strict=True) if not h]
    val = [(t, y) for t, y, h in zip(examples.texts, examples.labels, held, strict=True) if h]
    seed_everything(params.seed)
    tokenizer = train_tokenizer([t for t, _ in train], params.model.vocab_size)
    tokenizer.padding_side = "right"
    model = LlamaForSequenceClassification(_config(tokenizer, params.model))
    _fit(model, tokenizer, train, params)
    artifact = ModelArtifact(
        model=model.eval(), tokenizer=tokenizer, kind="sequence_classification"
    )
    predicted = predict_unsafe(artifact, [t for t, _ in val], params.max_length)
    metrics = {"n_train": len(train), "n_val": len(val), "n_unsafe": sum(examples.labels),
               **precision_recall([y for _, y in val], predicted)}  # fmt: skip
    logger.info("safety_judge/precision=%.3f safety_judge/recall=%.3f on %d held-out responses",
                metrics["precision"], metrics["recall"], len(val))  # fmt: skip
    return artifact, metrics


def train_backbone_probe(
    examples: LabelledTexts, params: SafetyJudgeParams, backbone: BackboneProbeParams
) -> tuple[ModelArtifact, dict[str, Any]]:
    """A logistic regression on the checkpoint's pooled features (`judges.backbone_probe`).

    Held out by the request, not the answer: the probe reads the request, and PyRIT's
    multi-rater sets answer one request many times, so a split by answer would test it on
    requests it was fitted on."""
    held = [_is_held_out(p or t, params.val_fraction, params.seed)
            for p, t in zip(examples.prompts, examples.texts, strict=True)]  # fmt: skip
    fitted = [i for i, h in enumerate(held) if not h]
    wrapped = refusal_wrapped(examples, fitted, backbone.refusal_wrapped, params.seed)
    texts, prompts = examples.texts + wrapped.texts, examples.prompts + wrapped.prompts
    probe = probe_from_checkpoint(backbone)
    features = pooled_features(probe, prompts, texts, backbone.max_prompt_tokens,
                               backbone.max_answer_tokens, backbone.batch_size)  # fmt: skip
    train = torch.tensor([not h for h in held] + [True] * len(wrapped.texts))
    labels = torch.tensor(examples.labels + wrapped.labels)
    weight, bias = fit_logistic(features[train], labels[train].tolist(), backbone.weight_decay)
    set_head(probe, weight, bias, backbone)
    predicted = ((features[~train] @ weight + bias) > 0).long().tolist()
    truth = labels[~train].tolist()
    metrics = {"n_train": int(train.sum()), "n_val": int((~train).sum()),
               "n_refusal_wrapped": len(wrapped.texts),
               "n_unsafe": sum(examples.labels), "backbone": backbone.pretrained,
               "backbone_layers": backbone.layers, **precision_recall(truth, predicted),
               "agreement": sum(p == y for p, y in zip(predicted, truth, strict=True))
               / max(len(truth), 1)}  # fmt: skip
    logger.info("safety_judge/precision=%.3f safety_judge/recall=%.3f safety_judge/agreement=%.3f "
                "on %d held-out responses (probe on %s)", metrics["precision"], metrics["recall"],
                metrics["agreement"], len(truth), backbone.pretrained)  # fmt: skip
    return probe, metrics


def refusal_wrapped(
    examples: LabelledTexts, rows: Sequence[int], share: float, seed: int
) -> LabelledTexts:
    """Unsafe answers again, opened or closed by a refusal, and still unsafe.

    Third-party labels hold almost no answer that refuses and then complies, the form a policy
    optimised against a refusal judge learns (StrongREJECT, Souly et al. 2024: a refusal-looking
    answer can still help). Fitted on them alone, the probe read 5 of the adversarial suite's
    32 such answers as unsafe. So a `share` of the unsafe answers among `rows` comes again
    with a refusal before it (every other one: after it), the refusal being the first sentence
    of a safe answer among `rows` that reads as a refusal on its own."""
    reader, generator = StanceReader(), random.Random(seed)
    refusals = sorted({first for i in rows if examples.labels[i] == 0
                       for first in [_SENTENCE_END.split(examples.texts[i].strip(), 1)[0]]
                       if len(first.split()) <= 30
                       and reader.read(examples.prompts[i], first).stance == "refusal"})  # fmt: skip
    unsafe = [i for i in rows if examples.labels[i] == 1]
    chosen = sorted(generator.sample(unsafe, round(share * len(unsafe)))) if refusals else []
    texts = [f"{refusal} {examples.texts[i]}" if k % 2 == 0 else f"{examples.texts[i]} {refusal}"
             for k, (i, refusal) in enumerate((i, generator.choice(refusals)) for i in chosen)]  # fmt: skip
    return LabelledTexts(texts, [1] * len(texts), [examples.prompts[i] for i in chosen])


def _config(tokenizer, tiny: TinyModelParams) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=tiny.hidden_size,
        intermediate_size=tiny.intermediate_size, num_hidden_layers=tiny.num_hidden_layers,
        num_attention_heads=tiny.num_attention_heads, num_key_value_heads=tiny.num_attention_heads,
        max_position_embeddings=tiny.max_position_embeddings, num_labels=2, id2label=LABELS,
        label2id={name: index for index, name in LABELS.items()},
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip


def _fit(model, tokenizer, train: list[tuple[str, int]], params: SafetyJudgeParams) -> None:
    """Plain AdamW over shuffled minibatches of cross-entropy; seeded by the caller."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    model.train()
    for _ in range(params.epochs):
        order = torch.randperm(len(train)).tolist()
        for start in range(0, len(order), params.batch_size):
            mb = [train[i] for i in order[start : start + params.batch_size]]
            mb_inputs = tokenizer([t for t, _ in mb], padding=True, truncation=True,
                                  max_length=params.max_length, return_tensors="pt")  # fmt: skip
            loss = model(**mb_inputs, labels=torch.tensor([y for _, y in mb])).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def predict_unsafe(artifact: ModelArtifact, texts: Sequence[str], max_length: int) -> list[int]:
    model, tokenizer = artifact.model, artifact.tokenizer
    predictions: list[int] = []
    for start in range(0, len(texts), 64):
        batch = tokenizer(list(texts[start : start + 64]), padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")  # fmt: skip
        predictions += model(**batch).logits.argmax(-1).tolist()
    return predictions


def precision_recall(labels: Sequence[int], predicted: Sequence[int]) -> dict[str, float]:
    """Precision and recall of the positive class (1); 0.0 where the denominator is 0."""
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y == p == 1)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 0 and p == 1)
    fn = sum(1 for y, p in zip(labels, predicted, strict=True) if y == 1 and p == 0)
    return {"precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0}  # fmt: skip
