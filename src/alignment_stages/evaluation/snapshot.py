"""A policy's answers to `eval_prompts`, drawn from fixed sampling seeds.

`EvalProtocol.evaluate` (evaluation.protocol) judges, scores and probes them; DPO's KL to its
start reads only the sampled log-probs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch
from tqdm.auto import tqdm

from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.modes import eval_mode
from alignment_stages.models.precision import autocast, resolve_precision
from alignment_stages.models.sampling import (
    encode_prompts,
    eos_token_ids,
    prompt_length_batches,
    sample_responses,
    unsampled_token_ids,
)


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
    # The held-out judges' label per sample (judges PPO never sees); empty when none is held out.
    heldout_labels: list[str] = field(default_factory=list)


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
    batches = prompt_length_batches(out.prompts, params.batch_size)
    n = len(out.prompts)
    texts, has_eos, lengths, kl = [""] * n, [False] * n, [0] * n, [0.0] * n
    precision = resolve_precision(params.precision, model, device)
    with torch.random.fork_rng(devices=[]), autocast(precision, device), eval_mode(model):
        torch.manual_seed(params.seed)
        for rows in tqdm(batches, desc="evaluation sampling", unit="batch"):
            batch = [out.prompts[i] for i in rows]
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
                else response_logprobs(
                    base.model, query_responses, sampled.attention_mask, context,
                    params.temperature, banned, entropy=False,
                )[0]
            )  # fmt: skip
            decoded = tokenizer.batch_decode(query_responses[:, context:], skip_special_tokens=True)
            batch_kl = ((sampled.logprobs - base_logp) * response_mask).sum(-1).tolist()
            for j, row in enumerate(rows):
                texts[row], has_eos[row] = decoded[j], bool(sampled.has_eos[j])
                lengths[row], kl[row] = int(response_mask[j].sum()), batch_kl[j]
    out.texts, out.has_eos, out.lengths, out.kl_to_base = texts, has_eos, lengths, kl
    return out
