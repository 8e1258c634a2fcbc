"""Behaviour metrics of one batch of generations: judged violations, diversity, length, KL to
the reference policy and perplexity on a fixed probe set.

Used once per PPO round and again by the evaluation pipeline, so both report the same numbers.
Keys are unnamespaced here; callers prefix them (`ppo/`, `eval/`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.modes import eval_mode


def violation_rate(labels: Sequence[str]) -> float:
    """Share of the (N,) judged labels that are "violation" (a judge's `Verdict.label`)."""
    _require_some(labels, "labels")
    return sum(label == "violation" for label in labels) / len(labels)


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams over whitespace tokens of all (N,) texts.

    Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models",
    §4.3. N-grams never span two texts. A collapsing policy (mode collapse under PPO) drives
    this towards 0. Returns 0.0 when no text has n tokens.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ngrams = [
        tuple(tokens[i : i + n])
        for tokens in (text.split() for text in texts)
        for i in range(len(tokens) - n + 1)
    ]
    return len(set(ngrams)) / len(ngrams) if ngrams else 0.0


class LengthStats(NamedTuple):
    mean: float
    std: float  # population standard deviation (ddof=0): the batch itself, not a sample of it


def length_stats(lengths: Sequence[float]) -> LengthStats:
    """Mean and standard deviation of the (N,) response lengths in tokens."""
    _require_some(lengths, "lengths")
    mean = sum(lengths) / len(lengths)
    return LengthStats(mean, math.sqrt(sum((x - mean) ** 2 for x in lengths) / len(lengths)))


def eos_rate(has_eos: Sequence[bool]) -> float:
    """Share of the (N,) generations that ended with EOS rather than hitting the length cap."""
    _require_some(has_eos, "has_eos")
    return sum(bool(flag) for flag in has_eos) / len(has_eos)


def label_flip_rate(previous: Sequence[str], current: Sequence[str]) -> float:
    """Share of the (N,) prompts whose verdict label changed between two rounds.

    Both rounds must judge the same prompts in the same order.
    """
    if len(previous) != len(current):
        raise ValueError(
            f"previous and current labels differ in length: {len(previous)} != {len(current)}"
        )
    _require_some(current, "labels")
    return sum(a != b for a, b in zip(previous, current, strict=True)) / len(current)


def kl_estimators(logp: torch.Tensor, logp_ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-token estimators of KL(π ‖ π_ref) for tokens sampled from π, elementwise.

    Schulman 2020, "Approximating KL Divergence": with log r = log π_ref − log π,
    k1 = −log r (unbiased, high variance, can be negative), k2 = ½ (log r)² (biased, low
    variance), k3 = (r − 1) − log r (unbiased, low variance, always >= 0).
    logp, logp_ref: same shape, e.g. (B, R). Returns {"k1", "k2", "k3"} of that shape.
    """
    if logp.shape != logp_ref.shape:
        raise ValueError(f"logp {tuple(logp.shape)} and logp_ref {tuple(logp_ref.shape)} differ")
    log_ratio = logp_ref.float() - logp.float()
    return {
        "k1": -log_ratio,
        "k2": 0.5 * log_ratio.square(),
        "k3": torch.expm1(log_ratio) - log_ratio,  # expm1 keeps r − 1 exact when r ≈ 1
    }


def kl_to_reference(
    logp_policy: torch.Tensor, logp_reference: torch.Tensor, mask: torch.Tensor
) -> float:
    """Sequence-level KL(π ‖ π_ref): the mean over (B,) sequences of the summed per-token k1.

    logp_policy, logp_reference: (B, R) log-probs of the sampled response tokens;
    mask: (B, R), 1 for real response tokens, 0 for padding after EOS.
    """
    if not logp_policy.shape == logp_reference.shape == mask.shape:
        raise ValueError(
            f"shapes differ: logp_policy {tuple(logp_policy.shape)}, "
            f"logp_reference {tuple(logp_reference.shape)}, mask {tuple(mask.shape)}"
        )
    k1 = kl_estimators(logp_policy, logp_reference)["k1"]
    return float((k1 * mask.float()).sum(-1).mean())


@torch.no_grad()
def probe_perplexity(
    artifact: ModelArtifact,
    prompts: Sequence[Sequence[Mapping[str, str]]],
    references: Sequence[str],
    batch_size: int = 32,
    max_length: int = 256,
) -> float:
    """Token-weighted perplexity exp(Σ NLL / Σ tokens) of the (N,) reference answers.

    Each reference is the assistant turn of the chat-templated conversation; only its tokens,
    closing EOS included, are counted, so the prompt's length does not dilute the number.
    Conversations keep their last `max_length` tokens. A rising probe perplexity during PPO
    shows the policy drifting away from fluent language even while the reward climbs.
    """
    if len(prompts) != len(references):
        raise ValueError(f"{len(prompts)} prompts but {len(references)} references")
    _require_some(references, "references")
    model, tokenizer = artifact.model, artifact.tokenizer
    with eval_mode(model):
        examples = [
            _probe_example(tokenizer, prompt, reference, max_length)
            for prompt, reference in zip(prompts, references, strict=True)
        ]
        # Batches of similar length: each is padded to its longest conversation (SmolLM2's 144 probe
        # conversations: 11,840 positions in file order, 10,448 sorted, 9,815 real), and the sum
        # does not depend on which examples share a batch.
        examples.sort(key=lambda example: len(example.ids))
        total_nll, total_tokens = 0.0, 0
        for start in range(0, len(examples), batch_size):
            nll, tokens = _batch_nll(model, tokenizer, examples[start : start + batch_size])
            total_nll, total_tokens = total_nll + nll, total_tokens + tokens
    return math.exp(total_nll / total_tokens)


class _ProbeExample(NamedTuple):
    ids: list[int]  # (T,) the conversation's last `max_length` token ids
    n_reference: int  # how many of the last ids are the reference answer's, closing EOS included


def _probe_example(
    tokenizer, prompt: Sequence[Mapping[str, str]], reference: str, max_length: int
) -> _ProbeExample:
    prompt_ids = _template_ids(tokenizer, list(prompt), add_generation_prompt=True)
    answer = {"role": "assistant", "content": reference}
    ids = _template_ids(tokenizer, [*prompt, answer], add_generation_prompt=False)
    if ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(
            "the chat template does not render the prompt as a prefix of the conversation, so "
            "the reference tokens cannot be told apart from the prompt's"
        )
    n_reference = len(ids) - len(prompt_ids)
    ids = ids[-max_length:]
    # The first token has no prefix to predict it from, so at most len(ids) - 1 are scored.
    return _ProbeExample(ids, min(n_reference, len(ids) - 1))


def _template_ids(tokenizer, messages: list, add_generation_prompt: bool) -> list[int]:
    rendered = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
    )
    return list(rendered["input_ids"])


def _batch_nll(model, tokenizer, examples: Sequence[_ProbeExample]) -> tuple[float, int]:
    """Summed NLL and count of the reference tokens of one batch.

    Rows are left-padded whatever the tokenizer's side, so every reference ends in the last
    column and only the last `max reference + 1` positions go through the LM head
    (`logits_to_keep`): on SmolLM2 (49k vocabulary) the prompt's logits were most of the probe's
    vocabulary-sized work and none of its result. Position ids come from the mask.
    """
    width = max(len(ids) for ids, _ in examples)
    keep = max(n_reference for _, n_reference in examples) + 1
    input_ids = torch.full((len(examples), width), tokenizer.pad_token_id or 0, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    target_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, (ids, n_reference) in enumerate(examples):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
        target_mask[row, width - n_reference :] = True
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    device = next(model.parameters()).device
    logits = model(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        logits_to_keep=keep,
    ).logits.float()
    logp = F.log_softmax(logits[:, :-1], dim=-1)  # position t predicts token t + 1
    targets = input_ids[:, width - keep + 1 :].to(device)
    token_logp = torch.gather(logp, -1, targets.unsqueeze(-1)).squeeze(-1)
    scored = target_mask[:, width - keep + 1 :].to(device)
    return float(-(token_logp * scored).sum()), int(scored.sum())


@dataclass(frozen=True)
class BehaviourSnapshot:
    """One round's behaviour metrics from its generations (keys documented in docs/)."""

    reward_mean: float  # mean reward-model score of the responses
    violation_rate: float  # share of responses the judge panel flags
    distinct_1: float  # distinct unigrams / unigrams (Li et al. 2016)
    distinct_2: float  # distinct bigrams / bigrams
    length_mean: float  # mean response length in tokens
    length_std: float  # population std of the response length in tokens
    eos_rate: float  # share of responses that ended with EOS


def summarise_generations(
    responses: Sequence[str],
    has_eos: Sequence[bool],
    response_lengths: Sequence[int],
    labels: Sequence[str],
    rewards: Sequence[float] | torch.Tensor,
) -> dict[str, float]:
    """The round metrics of (N,) generations as a dict with `BehaviourSnapshot`'s keys.

    KL and probe perplexity need model passes, so the caller adds them.
    """
    sizes = {len(responses), len(has_eos), len(response_lengths), len(labels), len(rewards)}
    if len(sizes) != 1:
        raise ValueError(
            f"responses, has_eos, response_lengths, labels and rewards differ in length: "
            f"{len(responses)}, {len(has_eos)}, {len(response_lengths)}, {len(labels)}, "
            f"{len(rewards)}"
        )
    _require_some(responses, "responses")
    lengths = length_stats(response_lengths)
    snapshot = BehaviourSnapshot(
        reward_mean=float(torch.as_tensor(rewards, dtype=torch.float64).mean()),
        violation_rate=violation_rate(labels),
        distinct_1=distinct_n(responses, 1),
        distinct_2=distinct_n(responses, 2),
        length_mean=lengths.mean,
        length_std=lengths.std,
        eos_rate=eos_rate(has_eos),
    )
    return asdict(snapshot)


def _require_some(items: Sequence, name: str) -> None:
    """A rate over nothing is undefined: fail loudly instead of reporting 0 or NaN."""
    if len(items) == 0:
        raise ValueError(f"{name} is empty")
