"""Per-token log-probabilities of responses, shared by PPO, the KL metrics and perplexity."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def response_logprobs(
    model,
    query_response: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs (B, R) of the response tokens `query_response[:, context_length:]`, and the
    policy's entropy (B, R) at those positions (no gradient). Queries are left-padded, so
    position ids come from the mask.

    Log-probs use logits / T, the same scaling as at sampling time: sampling at T and scoring at 1
    would bias the KL and the ratio (Huang et al. 2024, "The N+ Implementation Details of RLHF
    with PPO", detail 9). Only the R positions that predict response tokens go through the LM head
    (`logits_to_keep`): the query's logits are never needed, and the head is a large share of a
    small model's compute.
    """
    response_length = query_response.shape[1] - context_length
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=query_response,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=response_length + 1,
    ).logits[:, :-1]  # position t predicts token t + 1
    logp_all = F.log_softmax(logits.float() / temperature, dim=-1)
    logp = torch.gather(logp_all, -1, query_response[:, context_length:].unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy
