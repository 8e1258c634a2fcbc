"""Per-token log-probabilities of responses, shared by PPO, the KL metrics and perplexity."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def response_logprobs(
    model,
    query_response: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float = 1.0,
    banned_token_ids: Sequence[int] = (),
    entropy: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs (B, R) of the response tokens `query_response[:, context_length:]`, and the
    policy's entropy (B, R) at those positions (no gradient; None with `entropy=False`).
    Queries are left-padded, so position ids come from the mask.

    Log-probs use logits / T, the same scaling as at sampling time: sampling at T and scoring at 1
    would bias the KL and the ratio (Huang et al. 2024, "The N+ Implementation Details of RLHF
    with PPO", detail 9). Only the R positions that predict response tokens go through the LM head
    (`logits_to_keep`): the query's logits are never needed, and the head is a large share of a
    small model's compute. `banned_token_ids` get logit −∞, as the sampler gives them, so these
    are the log-probs of the distribution the tokens were drawn from.
    """
    response_length = query_response.shape[1] - context_length
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=query_response,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=response_length + 1,
    ).logits[:, :-1]  # position t predicts token t + 1
    logits = logits.float()
    if temperature != 1.0:  # x / 1 is x: one vocabulary-sized pass fewer, forward and backward
        logits = logits / temperature
    if banned_token_ids:
        logits = logits.index_fill(-1, torch.tensor(list(banned_token_ids), device=logits.device),
                                   float("-inf"))  # fmt: skip
    targets = query_response[:, context_length:]
    if not entropy:
        # Measuring only: log π(a) = z_a − logsumexp(z) reads the (B, R, V) logits once and
        # writes (B, R), where log_softmax writes a second (B, R, V) tensor and the entropy reads
        # it twice more: on SmolLM2 (49k vocabulary) that was about 0.7 s of a 7 s pass over 60
        # answers of 48 tokens.
        target_logits = torch.gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1)
        logp = target_logits - torch.logsumexp(logits, dim=-1)
        return _banned_targets_zero(logp, targets, banned_token_ids), None
    logp_all = F.log_softmax(logits, dim=-1)
    logp = torch.gather(logp_all, -1, targets.unsqueeze(-1)).squeeze(-1)
    logp = _banned_targets_zero(logp, targets, banned_token_ids)
    with torch.no_grad():
        token_entropy = -(logp_all.exp() * logp_all.clamp(min=torch.finfo(logp_all.dtype).min)).sum(
            -1
        )
    return logp, token_entropy


def _banned_targets_zero(
    logp: torch.Tensor, targets: torch.Tensor, banned_token_ids: Sequence[int]
) -> torch.Tensor:
    """A banned target is the padding after EOS, masked out by every caller: log-prob 0, not −∞."""
    if not banned_token_ids:
        return logp
    banned = torch.isin(targets, torch.tensor(list(banned_token_ids), device=targets.device))
    return logp.masked_fill(banned, 0.0)
