"""One evaluation protocol: what every evaluated policy is measured against.

PPO's rounds (and the critic-free alternatives'), the stage probe and the evaluation stage all
measure policies through one `EvalProtocol`: the same base for the KL, the same reward model and
judges, the same prompts, sampling seeds and capability probe. Numbers taken under one protocol
are comparable, and `fingerprint()` names the protocol, so an evaluation already made under it
can be reused (evaluation.memo).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch

from alignment_stages.behaviour.intervals import (
    bootstrap_mean,
    cluster_standard_error,
    jackknife_standard_error,
)
from alignment_stages.behaviour.metrics import (
    distinct_n,
    label_flip_rate,
    probe_perplexity,
    summarise_generations,
    violation_rate,
)
from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.evaluation.memo import (
    GENERATIONS_COLUMN,
    generations_to_json,
    reusable_evaluations,
    stamp_history,
    weights_fingerprint,
)
from alignment_stages.evaluation.snapshot import Generations, sample_generations
from alignment_stages.judges.config import JudgesParams, build_judge_panel
from alignment_stages.judges.panel import JudgePanel, PanelVerdicts, judge_rate_key
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.precision import scoring_precision
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.reward.scoring import score_responses


@dataclass(frozen=True)
class PolicyEvaluation:
    """One policy measured under a protocol: its metrics and its N generations."""

    metrics: dict[str, Any]  # the snapshot metrics documented in docs/metrics.md
    generations: Generations  # texts, rewards and judged labels, in the fixed order

    @property
    def labels(self) -> list[str]:
        return self.generations.labels

    def history_row(self) -> dict[str, Any]:
        """The metrics, and the generations kept so that a later stage need not evaluate this
        policy again (`ppo_history`'s `eval_generations`)."""
        return {**self.metrics, GENERATIONS_COLUMN: generations_to_json(self.generations)}


@dataclass(frozen=True, eq=False)
class EvalProtocol:
    base: ModelArtifact  # the KL to base is measured against it (the probe: its start)
    reward_model: ModelArtifact  # the proxy PPO optimises
    judges: JudgePanel
    eval_prompts: pd.DataFrame
    capability_probe: pd.DataFrame
    sampling: RoundEvalParams
    # The panel's parameters as JSON: the fingerprint's description of the judges.
    judges_config: Mapping[str, Any] = field(default_factory=dict)
    # Held-out reward models: extra metrics (proxy against held-out), no effect on the others,
    # so they are left out of the fingerprint.
    ensemble: RewardEnsemble | None = None
    # Judges PPO never sees (`behaviour_judges.held_out`): the proxy-against-gold check of
    # Gao et al. 2022 applied to judges. In the fingerprint through `judges_config`.
    held_out_judges: JudgePanel | None = None

    @classmethod
    def from_config(
        cls,
        base: ModelArtifact,
        reward_model: ModelArtifact,
        judges: JudgesParams,
        eval_prompts: pd.DataFrame,
        capability_probe: pd.DataFrame,
        sampling: RoundEvalParams,
        ensemble: RewardEnsemble | None = None,
        safety_classifier: ModelArtifact | None = None,
    ) -> EvalProtocol:
        """The protocol of a stage, with its judge panel built from the `judges` block;
        `safety_classifier` is the `learned` judge's classifier when it names no path."""
        panel = build_judge_panel(judges, reward_model, safety_classifier=safety_classifier)
        held_out = build_judge_panel(judges, reward_model, held_out=True,
                                     safety_classifier=safety_classifier)  # fmt: skip
        described = judges.model_dump(mode="json")
        if judges.learned is not None and judges.learned.path is None and safety_classifier:
            # The classifier is this run's, not a path: its weights name it in the fingerprint.
            described["learned"]["weights"] = weights_fingerprint(safety_classifier.model)
        return cls(base, reward_model, panel, eval_prompts, capability_probe, sampling,
                   described, ensemble, held_out)  # fmt: skip

    def evaluate(
        self, policy: ModelArtifact, previous_labels: Sequence[str] | None = None
    ) -> PolicyEvaluation:
        """The behaviour snapshot of `policy`: reward, violations, KL to base, probe
        perplexity, diversity, length, EOS rate, and label flips since `previous_labels` (same
        order); with an `ensemble`, the proxy and held-out rewards and the ensemble's spread."""
        # 1. Sample every eval prompt from the fixed seed.
        generations = sample_generations(policy, self.base, self.eval_prompts, self.sampling)
        # 2. Score in one pass at the proxy's precision: the held-out members score inside it
        # too, so their gap to the proxy is not a precision difference.
        with scoring_precision(self.reward_model.model, self.sampling.precision):
            rewards = score_responses(self.reward_model, generations.prompts, generations.texts)
            held_out = (
                self.ensemble.metrics(generations.prompts, generations.texts,
                                      generations.prompt_ids, rewards.numpy())
                if self.ensemble is not None
                else {}
            )  # fmt: skip
        # 3. Judge, then summarise with intervals over prompts.
        judged = self.judges.judge_detailed(
            generations.prompts, generations.texts, generations.categories
        )
        generations.rewards = rewards.tolist()
        generations.labels = [v.label for v in judged.panel]
        metrics = _behaviour_metrics(generations, judged, self.sampling.seed) | held_out
        if self.held_out_judges is not None:
            metrics |= _held_out_judge_metrics(
                self.held_out_judges, generations, judged, self.sampling.seed
            )
        # 4. The capability probe, and how many judged labels moved since the last policy.
        with scoring_precision(policy.model, self.sampling.precision):
            metrics["probe_perplexity"] = probe_perplexity(
                policy,
                [as_messages(p) for p in self.capability_probe["prompt_messages"]],
                list(self.capability_probe["reference_response"]),
            )
        metrics["label_flip_rate"] = (
            label_flip_rate(previous_labels, generations.labels) if previous_labels else 0.0
        )
        return PolicyEvaluation(metrics, generations)

    def fingerprint(self) -> str:
        """Everything besides the policy that an evaluation's numbers depend on."""
        sampling, probe = self.sampling, self.capability_probe
        table = self.eval_prompts
        table = table.head(sampling.max_prompts) if sampling.max_prompts else table
        described = {
            "sampling": sampling.model_dump(mode="json"),
            "judges": dict(self.judges_config),
            "prompts": [
                [str(pid), as_messages(messages), category if isinstance(category, str) else None]
                for pid, messages, category in zip(
                    table["prompt_id"], table["prompt_messages"], table["category"], strict=True
                )
            ],
            "probe": [
                [as_messages(messages), str(reference)]
                for messages, reference in zip(
                    probe["prompt_messages"], probe["reference_response"], strict=True
                )
            ],
            "reward_model": weights_fingerprint(self.reward_model.model),
            "base": weights_fingerprint(self.base.model),
        }
        text = json.dumps(described, sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()

    def stamp(self, history: pd.DataFrame, policies: Mapping[str, ModelArtifact]) -> pd.DataFrame:
        """`history` with each evaluated row's weights fingerprint and this protocol's."""
        return stamp_history(history, policies, self.fingerprint())

    def reusable(self, history: pd.DataFrame) -> dict[str, PolicyEvaluation]:
        """The evaluations of `history` made under this very protocol, by weights fingerprint."""
        found = reusable_evaluations(history, self.fingerprint())
        return {weights: PolicyEvaluation(*pair) for weights, pair in found.items()}


def _held_out_judge_metrics(
    panel: JudgePanel, generations: Generations, judged: PanelVerdicts, seed: int
) -> dict[str, Any]:
    """The held-out judges' violation rate, on the prompts as the proxy panel categorised
    them, with its 95% interval and standard error over prompts, and each held-out judge's own
    rate."""
    verdicts = panel.judge_detailed(generations.prompts, generations.texts, judged.categories)
    labels = [v.label for v in verdicts.panel]
    generations.heldout_labels = labels  # the rates per category and source read them
    flagged = [float(label == "violation") for label in labels]
    metrics = {
        "heldout_violation_rate": violation_rate(labels),
        "heldout_violation_rate_se": cluster_standard_error(flagged, generations.prompt_ids),
    }
    interval = bootstrap_mean(flagged, generations.prompt_ids, seed=seed)
    metrics["heldout_violation_rate_ci_low"] = interval.low
    metrics["heldout_violation_rate_ci_high"] = interval.high
    for name, per_judge in verdicts.per_judge.items():
        metrics[judge_rate_key(name)] = violation_rate([v.label for v in per_judge])
    return metrics


def _behaviour_metrics(
    generations: Generations, judged: PanelVerdicts, seed: int
) -> dict[str, Any]:
    """The snapshot metrics of judged, scored generations, with their uncertainty."""
    labels, rewards = generations.labels, generations.rewards
    metrics = summarise_generations(
        generations.texts, generations.has_eos, generations.lengths, labels, rewards
    )
    flagged = [label == "violation" for label in labels]
    interval = bootstrap_mean(flagged, generations.prompt_ids, seed=seed)
    metrics["violation_rate_ci_low"] = interval.low
    metrics["violation_rate_ci_high"] = interval.high
    # Standard errors with prompts as clusters: the gate's intervals at its own confidence.
    for key, values in (("reward_mean", rewards), ("violation_rate", flagged),
                        ("kl_to_base", generations.kl_to_base), ("eos_rate", generations.has_eos),
                        ("length_mean", generations.lengths)):  # fmt: skip
        metrics[f"{key}_se"] = cluster_standard_error(
            [float(v) for v in values], generations.prompt_ids
        )
    metrics["distinct_2_se"] = jackknife_standard_error(
        generations.texts, generations.prompt_ids, lambda texts: distinct_n(texts, 2)
    )
    metrics["samples"] = len(labels)
    # Each judge's own rate beside the panel's `violation_rate` (docs/metrics.md).
    for name, verdicts in judged.per_judge.items():
        metrics[judge_rate_key(name)] = violation_rate([v.label for v in verdicts])
    metrics["kl_to_base"] = float(torch.tensor(generations.kl_to_base).mean())
    # Gao et al. 2022 plot reward against √KL: over-optimisation bends the proxy and gold
    # curves apart along this axis.
    metrics["sqrt_kl_to_base"] = math.sqrt(max(metrics["kl_to_base"], 0.0))
    return metrics
