"""Evaluate one policy on `eval_prompts` with fixed sampling seeds.

Every PPO round and every stage of the evaluation pipeline goes through `evaluate_policy`, so
the numbers are comparable: same prompts, same seeds, same judges, same reward model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

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
from alignment_stages.judges.panel import JudgePanel, judge_rate_key
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.logprobs import response_token_logprobs
from alignment_stages.models.precision import autocast, resolve_precision, scoring_precision
from alignment_stages.ppo.config import RoundEvalParams
from alignment_stages.ppo.rollout import (
    encode_prompts,
    eos_token_ids,
    sample_responses,
    unsampled_token_ids,
)
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.reward.scoring import score_responses


@dataclass
class Generations:
    """N = prompts × samples_per_prompt generations, in a fixed order."""

    prompt_ids: list[str]
    prompts: list[list[dict[str, str]]]
    categories: list[str | None]
    texts: list[str] = field(default_factory=list)
    has_eos: list[bool] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    kl_to_base: list[float] = field(default_factory=list)  # Σ_t log π − log π_base per sample
    rewards: list[float] = field(default_factory=list)  # reward-model score per sample
    labels: list[str] = field(default_factory=list)  # judge panel label per sample


@torch.no_grad()
def sample_generations(
    policy: ModelArtifact, base: ModelArtifact, eval_prompts: pd.DataFrame, params: RoundEvalParams
) -> Generations:
    """Sample at `params.temperature` from a fixed seed; the global RNG is restored afterwards,
    so evaluating never changes the course of training."""
    table = eval_prompts.head(params.max_prompts) if params.max_prompts else eval_prompts
    repeats = params.samples_per_prompt
    out = Generations(
        prompt_ids=[pid for pid in table["prompt_id"] for _ in range(repeats)],
        prompts=[as_messages(p) for p in table["prompt_messages"] for _ in range(repeats)],
        categories=[
            c if isinstance(c, str) else None for c in table["category"] for _ in range(repeats)
        ],
    )
    model, tokenizer = policy.model, policy.tokenizer
    device = next(model.parameters()).device
    banned = unsampled_token_ids(tokenizer, eos_token_ids(model, tokenizer))
    was_training = model.training
    model.eval()
    batches = range(0, len(out.prompts), params.batch_size)
    precision = resolve_precision(params.precision, model, device)
    with torch.random.fork_rng(devices=[]), autocast(precision, device):
        torch.manual_seed(params.seed)
        for start in tqdm(batches, desc="evaluation sampling", unit="batch"):
            batch = out.prompts[start : start + params.batch_size]
            input_ids, prompt_mask = encode_prompts(tokenizer, batch, device)
            sampled = sample_responses(
                model, tokenizer, input_ids, prompt_mask, params.max_new_tokens, params.temperature
            )
            query_responses, response_mask = sampled.query_responses, sampled.response_mask
            context = input_ids.shape[1]
            # log π from the sampler itself, the distribution the tokens were drawn from; only
            # the base needs a forward pass, and none when the policy is the base (round 0, the
            # evaluation's "base" row), whose KL is 0 by definition.
            base_logp = (
                sampled.logprobs
                if base.model is model
                else response_token_logprobs(
                    base.model, query_responses, sampled.attention_mask, context,
                    params.temperature, banned,
                )
            )  # fmt: skip
            out.texts += tokenizer.batch_decode(
                query_responses[:, context:], skip_special_tokens=True
            )
            out.has_eos += sampled.has_eos.tolist()
            out.lengths += response_mask.sum(-1).tolist()
            out.kl_to_base += ((sampled.logprobs - base_logp) * response_mask).sum(-1).tolist()
    model.train(was_training)
    return out


def evaluate_policy(
    policy: ModelArtifact,
    base: ModelArtifact,
    reward_model: ModelArtifact,
    judges: JudgePanel,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    params: RoundEvalParams,
    previous_labels: list[str] | None = None,
    ensemble: RewardEnsemble | None = None,
) -> tuple[dict[str, Any], Generations, list[str]]:
    """The behaviour snapshot of one policy: reward, violations, KL to base, probe perplexity,
    diversity, length, EOS rate, and label flips since `previous_labels` (same order); with an
    `ensemble`, the proxy and held-out rewards and the ensemble's spread."""
    generations = sample_generations(policy, base, eval_prompts, params)
    # One pass at the proxy's scoring precision: the held-out members score inside it too, so
    # their gap to the proxy is not a precision difference.
    with scoring_precision(reward_model.model, params.precision):
        rewards = score_responses(reward_model, generations.prompts, generations.texts)
        held_out = (
            ensemble.metrics(
                generations.prompts, generations.texts, generations.prompt_ids, rewards.numpy()
            )
            if ensemble is not None
            else {}
        )
    judged = judges.judge_detailed(generations.prompts, generations.texts, generations.categories)
    verdicts = judged.panel
    labels = [v.label for v in verdicts]
    metrics = summarise_generations(
        generations.texts, generations.has_eos, generations.lengths, verdicts, rewards
    )
    flagged = [label == "violation" for label in labels]
    interval = bootstrap_mean(flagged, generations.prompt_ids, seed=params.seed)
    metrics["violation_rate_ci_low"], metrics["violation_rate_ci_high"] = (
        interval.low,
        interval.high,
    )
    # Standard errors with prompts as clusters: the gate's intervals at its own confidence.
    for key, values in (("reward_mean", rewards.tolist()), ("violation_rate", flagged),
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
    for name, judge_verdicts in judged.per_judge.items():
        metrics[judge_rate_key(name)] = violation_rate(judge_verdicts)
    metrics["kl_to_base"] = float(torch.tensor(generations.kl_to_base).mean())
    # Gao et al. 2022 plot reward against √KL: over-optimisation bends the proxy and gold
    # curves apart along this axis.
    metrics["sqrt_kl_to_base"] = math.sqrt(max(metrics["kl_to_base"], 0.0))
    metrics |= held_out
    with scoring_precision(policy.model, params.precision):
        metrics["probe_perplexity"] = probe_perplexity(
            policy,
            [as_messages(p) for p in capability_probe["prompt_messages"]],
            list(capability_probe["reference_response"]),
        )
    metrics["label_flip_rate"] = (
        label_flip_rate(previous_labels, labels) if previous_labels else 0.0
    )
    generations.rewards, generations.labels = rewards.tolist(), labels
    return metrics, generations, labels
