"""Sampling from a policy: chat-templated prompts, exact ancestral sampling with the KV cache,
and the EOS handling every caller shares.

Sampling is a model capability, not PPO's: PPO's rollouts, every evaluation and the preference
sampling all draw their answers here, so they agree on what a response is (up to and including
the first EOS) and on the distribution it was drawn from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from alignment_stages.models.precision import frozen_weights_cast_once


def encode_prompts(
    tokenizer, prompts: Sequence[Sequence[dict[str, str]]], device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chat-templated prompts, left-padded: right padding at generation silently breaks the KL
    (the first update showed KL 12 instead of 0 in TRL 1.12's PPO)."""
    encoded = [
        tokenizer.apply_chat_template(
            list(p), add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        for p in prompts
    ]
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def right_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, each row at the left and padded on the right. Right padding
    keeps a causal model's positions counting from each row's first token; generation wants
    left padding instead (`encode_prompts`)."""
    width = max(len(ids) for ids in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of similar length, shortest first. Padding pads a batch to its
    longest member: the published training prompts run from 9 to 1,982 characters, and 32 of
    them with one long prompt among them took 96 s to answer 16 tokens each on SmolLM2
    (2 cores), padded to 481 tokens (docs/performance.md). Callers put the results back in
    their own order."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def prompt_length_batches(
    prompts: Sequence[Sequence[dict[str, str]]], batch_size: int
) -> list[list[int]]:
    """`length_batches` of chat prompts, by the characters of their messages."""
    return length_batches([sum(len(m["content"]) for m in p) for p in prompts], batch_size)


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every id that ends a response: the tokenizer's EOS and each EOS of the checkpoint's
    `generation_config` (Qwen2.5-Instruct lists two; stopping on one alone runs past the end)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list | tuple) else [configured])
    return sorted(i for i in ids if i is not None)


def unsampled_token_ids(tokenizer, eos_ids: Sequence[int]) -> list[int]:
    """Tokens the policy must never draw: a pad of its own (pad == eos checkpoints get one added
    in `models.base`). Sampled, it would be trained on but stripped from the text that is
    scored."""
    pad = tokenizer.pad_token_id
    return [] if pad is None or pad in eos_ids else [pad]


def truncate_after_eos(
    responses: torch.Tensor, eos_token_ids: Sequence[int] | int, pad_token_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep each response up to and including its first EOS (any of `eos_token_ids`); pad the
    rest.

    responses: (B, R). Returns (responses, response_mask (B, R), has_eos (B,)). Tokens sampled
    after EOS must never be scored or trained on (the reward model once scored text after EOS).
    """
    eos = torch.as_tensor(eos_token_ids, device=responses.device).reshape(-1)
    is_eos = torch.isin(responses, eos)
    has_eos = is_eos.any(dim=1)
    first_eos = torch.where(
        has_eos,
        is_eos.int().argmax(dim=1),
        torch.full_like(has_eos, responses.shape[1] - 1, dtype=torch.long),
    )
    positions = torch.arange(responses.shape[1], device=responses.device).unsqueeze(0)
    response_mask = positions <= first_eos.unsqueeze(1)
    return responses.masked_fill(~response_mask, pad_token_id), response_mask, has_eos


def cumulative_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """(B, V) float64 running sums: token i owns [c[i−1], c[i]) of [0, c[V−1]), so it is drawn
    with probability (c[i] − c[i−1]) / c[V−1] (up to u's 2⁻⁵³ resolution)."""
    return probs.double().cumsum(dim=-1)


def sample_categorical(probs: torch.Tensor, num_samples: int | None = None) -> torch.Tensor:
    """Draws from each row of `probs` (B, V) by inverse transform: the first index whose
    cumulative probability exceeds u · total, u ~ U[0, 1). (B,) tokens, or (B, num_samples).

    Exact sampling, like `torch.multinomial`, but it needs B uniforms instead of B·V exponentials:
    on CPU about 15x less time per step at a 1k vocabulary. The running sum is float64: in
    float32 its rounding gave a total-variation distance of 8.8e-4 to the softmax at a 152k
    vocabulary, and 40,971 tokens owned an empty interval. Zero-probability tokens own an empty
    interval and are never drawn.
    """
    cumulative = cumulative_probabilities(probs)
    u = torch.rand(probs.shape[0], num_samples or 1, device=probs.device, dtype=torch.float64)
    token = torch.searchsorted(cumulative, u * cumulative[:, -1:], right=True)
    token = token.clamp(max=probs.shape[-1] - 1)
    return token if num_samples else token.squeeze(1)


class SampledTokens(NamedTuple):
    tokens: torch.Tensor  # (B, R) drawn tokens, pad after each row's EOS
    # (B, R) float32 log-prob of each drawn token under the distribution it was drawn from,
    # softmax(logits / T) with the banned tokens at −∞; 0 after the row's EOS
    logprobs: torch.Tensor


def sample_tokens(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    eos_token_ids: Sequence[int] | int,
    pad_token_id: int,
    banned_token_ids: Sequence[int] = (),
) -> SampledTokens:
    """Ancestral sampling with the KV cache: the new tokens, pad after each row's EOS, and their
    log-probs under the sampling distribution.

    Pure sampling from softmax(logits / T), no top-k/top-p, so the recomputed log-probs describe
    the distribution the tokens were drawn from; `banned_token_ids` get logit −∞ (and
    `models.logprobs` masks them the same way). A plain loop rather than `generate`, under
    `inference_mode` (no autograd bookkeeping per op): about a third less time per rollout on
    small models. The log-probs are read off the probabilities the draw used, so a caller that
    needs log π of its own samples (the evaluation's KL to base) has them without a second
    forward pass.
    """
    tokens, logprobs = [], []
    eos = torch.as_tensor(eos_token_ids, device=input_ids.device).reshape(-1)
    banned = list(banned_token_ids)
    with frozen_weights_cast_once(model), torch.inference_mode():
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       use_cache=True, logits_to_keep=1)  # fmt: skip
        next_position = position_ids[:, -1:] + 1
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            logits = output.logits[:, -1].double() / temperature
            if banned:
                logits[:, banned] = float("-inf")
            probs = torch.softmax(logits, dim=-1)
            token = sample_categorical(probs)
            # A drawn token has probability > 0 (zero-probability tokens own an empty interval).
            logprob = probs.gather(-1, token.unsqueeze(-1)).squeeze(-1).log()
            tokens.append(token.masked_fill(finished, pad_token_id))
            logprobs.append(logprob.masked_fill(finished, 0.0).float())
            finished |= torch.isin(tokens[-1], eos)
            if finished.all():
                break
            attention_mask = torch.cat([attention_mask, (~finished).long().unsqueeze(1)], dim=1)
            # `cache=`: `past_key_values=` is deprecated and removed in transformers 5.40.
            output = model(input_ids=tokens[-1].unsqueeze(1), attention_mask=attention_mask,
                           position_ids=next_position, cache=output.cache,
                           use_cache=True)  # fmt: skip
            next_position = next_position + 1
    # Stacked outside inference mode: normal tensors, which later training passes may use.
    return SampledTokens(torch.stack(tokens, dim=1), torch.stack(logprobs, dim=1))


class SampledResponses(NamedTuple):
    """B = prompts, Q = padded query length, R = response length."""

    query_responses: torch.Tensor  # (B, Q+R) left-padded query, then the response (pad after EOS)
    attention_mask: torch.Tensor  # (B, Q+R) 1 on real tokens
    response_mask: torch.Tensor  # (B, R) 1 up to and including the first EOS
    has_eos: torch.Tensor  # (B,) bool, the response ended with EOS within the budget
    logprobs: torch.Tensor  # (B, R) the sampler's log π of each response token, 0 after EOS


@torch.no_grad()
def sample_responses(
    model,
    tokenizer,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
) -> SampledResponses:
    """Sample, then truncate after the first EOS (any of the checkpoint's EOS ids)."""
    eos = eos_token_ids(model, tokenizer)
    sampled = sample_tokens(
        model,
        input_ids,
        attention_mask,
        max_new_tokens,
        temperature,
        eos,
        tokenizer.pad_token_id,
        unsampled_token_ids(tokenizer, eos),
    )
    responses, response_mask, has_eos = truncate_after_eos(
        sampled.tokens, eos, tokenizer.pad_token_id
    )
    query_responses = torch.cat([input_ids, responses], dim=1)
    full_mask = torch.cat([attention_mask, response_mask.long()], dim=1)
    logprobs = sampled.logprobs * response_mask
    return SampledResponses(query_responses, full_mask, response_mask, has_eos, logprobs)
