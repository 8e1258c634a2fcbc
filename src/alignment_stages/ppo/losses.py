"""PPO losses as pure functions: tensors in, named pieces out (shapes (B, R) unless noted)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from alignment_stages.ppo.advantages import masked_mean


@dataclass
class PolicyLoss:
    loss: torch.Tensor  # scalar
    approx_kl: torch.Tensor  # scalar, k3 estimate of KL(π_old ‖ π_new)
    clipfrac: torch.Tensor  # scalar, share of tokens whose ratio left [1 − ε, 1 + ε]


@dataclass
class ValueLoss:
    loss: torch.Tensor  # scalar
    clipfrac: torch.Tensor  # scalar


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> PolicyLoss:
    """L^CLIP (Schulman et al. 2017, eq. 7), negated for minimisation:
    max(−A·r, −A·clip(r, 1 − ε, 1 + ε)) with r = π/π_old, averaged over real tokens."""
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)  # Schulman 2020, k3
        clipfrac = masked_mean((torch.abs(ratio - 1.0) > clip_range).float(), mask)
    return PolicyLoss(loss=loss, approx_kl=approx_kl, clipfrac=clipfrac)


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float,
) -> ValueLoss:
    """½·max((V − R)², (clip(V, V_old ± ε_v) − R)²): the value update is bounded like the policy's
    (Huang et al. 2024, detail 10; as in OpenAI's lm-human-preferences)."""
    clipped = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    loss = 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)
    with torch.no_grad():
        clipfrac = masked_mean(((clipped - returns) ** 2 > (values - returns) ** 2).float(), mask)
    return ValueLoss(loss=loss, clipfrac=clipfrac)
