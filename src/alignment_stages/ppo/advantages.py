"""Per-token rewards, GAE and whitening. All tensors are (B, R): batch × response tokens."""

from __future__ import annotations

from collections.abc import Callable

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    mask = mask.to(values.dtype)
    if dim is None:
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    return (values * mask).sum(dim) / mask.sum(dim).clamp(min=1.0)


def masked_whiten(
    values: torch.Tensor,
    mask: torch.Tensor,
    sum_across_processes: Callable[[torch.Tensor], torch.Tensor] = lambda total: total,
) -> torch.Tensor:
    """Normalise to zero mean and unit variance over the real tokens of the batch (Huang et al.
    2024, detail 4), 0 on padding. Under `accelerate launch` the batch is every process's:
    `sum_across_processes` sums the statistics' numerators and counts over them, so each
    process whitens with the same mean and variance."""
    mask = mask.float()
    total, count = sum_across_processes(torch.stack([(values * mask).sum(), mask.sum()]))
    mean = total / count.clamp(min=1)
    square = sum_across_processes(((values - mean) ** 2 * mask).sum())
    return (values - mean) * torch.rsqrt(square / count.clamp(min=1) + 1e-8) * mask


def per_token_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """r_t = −β (log π(a_t|s_t) − log π_ref(a_t|s_t)), plus the sequence score on the last real
    token (Ziegler et al. 2019, eq. 2; the k1 KL estimator per token).

    scores: (B,); logprobs, ref_logprobs, response_mask: (B, R). Returns (rewards, kl), both (B, R)
    and zero where the mask is off.
    """
    kl = (logprobs - ref_logprobs) * response_mask
    rewards = -kl_coef * kl
    last_token = response_mask.long().sum(-1).clamp(min=1) - 1  # (B,) index of the last real token
    rewards[torch.arange(rewards.shape[0]), last_token] += scores
    return rewards * response_mask, kl


def discount_matrix(length: int, discount: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """D[s, t] = discount^(s − t) for s ≥ t, else 0; so (δ @ D)[t] = Σ_{s≥t} discount^(s−t) δ_s."""
    steps = torch.arange(length, device=device)
    power = (steps.unsqueeze(1) - steps.unsqueeze(0)).to(dtype)  # [s, t] = s − t
    return torch.where(
        power >= 0, discount ** power.clamp(min=0), torch.zeros((), dtype=dtype, device=device)
    )


def generalized_advantage_estimation(
    rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (Schulman et al. 2016, eq. 16), vectorised over time.

        δ_t = r_t + γ V(s_{t+1}) − V(s_t)           (V = 0 past the last real token)
        A_t = Σ_{l≥0} (γλ)^l δ_{t+l}
        returns_t = A_t + V(s_t)

    Returns (advantages, returns), both (B, R). `tests/ppo/test_advantages.py` checks this
    against the plain reversed loop.
    """
    values = values * response_mask
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    deltas = (rewards + gamma * next_values - values) * response_mask
    discounts = discount_matrix(rewards.shape[1], gamma * lam, rewards.device, rewards.dtype)
    advantages = deltas @ discounts
    return advantages * response_mask, (advantages + values) * response_mask


def leave_one_out_advantages(
    rewards: torch.Tensor, response_mask: torch.Tensor, group_size: int
) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024, "Back to Basics", eq. 5): each sample's sequence reward minus
    the mean reward of the other k − 1 samples of the same prompt, on every response token.

        R_i = Σ_t r_it                              (the score and −β·KL per token)
        A_i = R_i − (Σ_{j≠i} R_j) / (k − 1)

    rewards, response_mask: (B, R), with the k samples of each prompt in consecutive rows
    (B = prompts × k). The baseline needs no critic: a group where every sample complied or
    every sample refused gets advantage 0, and only the contrast within a prompt is reinforced.
    OpenRLHF offers the same estimator inside its PPO trainer (`--advantage_estimator rloo`).
    """
    if group_size < 2 or rewards.shape[0] % group_size:
        raise ValueError(
            f"a batch of {rewards.shape[0]} rows does not split into groups of {group_size} >= 2"
        )
    grouped = (rewards * response_mask).sum(-1).view(-1, group_size)
    baseline = (grouped.sum(-1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - baseline).reshape(-1, 1) * response_mask


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) over real tokens: 1 is a perfect critic, ≤ 0 no better than a
    constant (as CleanRL logs it)."""
    variance = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    residual = returns - values
    residual_variance = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    return float("nan") if variance == 0 else (1.0 - residual_variance / variance).item()
