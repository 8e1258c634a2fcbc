"""Oracle tests: vectorised GAE and rewards against plain loops and hand-computed values."""

import pytest
import torch

from alignment_stages.ppo.advantages import (
    generalized_advantage_estimation,
    leave_one_out_advantages,
    masked_whiten,
    per_token_rewards,
)


def _gae_loop(rewards, values, mask, gamma, lam):
    """The textbook reversed loop (CleanRL ppo.py), one sequence at a time."""
    batch, length = rewards.shape
    advantages = torch.zeros_like(rewards)
    for b in range(batch):
        last = 0.0
        real = int(mask[b].sum())
        for t in reversed(range(real)):
            next_value = values[b, t + 1] if t + 1 < real else 0.0
            delta = rewards[b, t] + gamma * next_value - values[b, t]
            last = delta + gamma * lam * last
            advantages[b, t] = last
    return advantages, (advantages + values) * mask


def test_vectorised_gae_equals_the_plain_loop():
    torch.manual_seed(0)
    rewards, values = torch.randn(6, 9), torch.randn(6, 9)
    mask = torch.arange(9).unsqueeze(0) < torch.tensor([9, 1, 4, 7, 3, 9]).unsqueeze(1)
    rewards = rewards * mask
    for gamma, lam in [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.5, 0.0)]:
        got_adv, got_ret = generalized_advantage_estimation(rewards, values, mask, gamma, lam)
        want_adv, want_ret = _gae_loop(rewards, values, mask, gamma, lam)
        torch.testing.assert_close(got_adv, want_adv * mask)
        torch.testing.assert_close(got_ret, want_ret)


def test_gae_by_hand():
    # Two steps, γ = 1, λ = 0.5: δ1 = 1 − 0.5 = 0.5; δ0 = 0 + 0.5 − 0.25 = 0.25; A0 = 0.25 + 0.5·0.5
    rewards = torch.tensor([[0.0, 1.0]])
    values = torch.tensor([[0.25, 0.5]])
    advantages, returns = generalized_advantage_estimation(
        rewards, values, torch.ones(1, 2), 1.0, 0.5
    )
    torch.testing.assert_close(advantages, torch.tensor([[0.5, 0.5]]))
    torch.testing.assert_close(returns, torch.tensor([[0.75, 1.0]]))


def test_score_lands_on_the_last_real_token_and_kl_is_per_token():
    scores = torch.tensor([2.0, -1.0])
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -9.0]])
    ref_logprobs = torch.tensor([[-1.5, -2.0, -2.0], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]]).bool()
    rewards, kl = per_token_rewards(scores, logprobs, ref_logprobs, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.5, 0.0, -1.0], [1.0, 0.0, 0.0]]))
    torch.testing.assert_close(rewards, torch.tensor([[-0.05, 0.0, 0.1 + 2.0], [-0.1, -1.0, 0.0]]))


def test_whitening_gives_zero_mean_unit_variance_over_real_tokens_only():
    values = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[1, 1, 1, 0]]).bool()
    whitened = masked_whiten(values, mask)
    real = whitened[mask]
    torch.testing.assert_close(real.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(real.pow(2).mean(), torch.tensor(1.0), atol=1e-4, rtol=0)
    assert whitened[0, 3] == 0  # padding stays out of the advantages
    # the plain loop: mean and population variance of the real tokens
    mean = sum([1.0, 2.0, 3.0]) / 3
    std = (sum((v - mean) ** 2 for v in [1.0, 2.0, 3.0]) / 3) ** 0.5
    torch.testing.assert_close(real, torch.tensor([(v - mean) / std for v in [1.0, 2.0, 3.0]]))


def test_whitening_across_processes_uses_the_whole_batch_statistics():
    """What PPO runs under `accelerate launch`: each process whitens its own rows with the mean
    and variance of every process's rows, summed by the all-reduce. Two processes simulated in
    lockstep give process 0's rows exactly as whitening the whole batch at once does."""
    torch.manual_seed(0)
    values, mask = torch.randn(6, 5) * 3 + 1, torch.rand(6, 5) > 0.3
    rows = {0: slice(0, 3), 1: slice(3, 6)}
    local = {rank: (values[r], mask[r].float()) for rank, r in rows.items()}
    calls = []

    def all_reduce_sum(total: torch.Tensor) -> torch.Tensor:
        """Process 0's view: its own sum plus process 1's, at the same call of the same code."""
        other_values, other_mask = local[1]
        if not calls:  # 1st call: Σ values and Σ mask
            other = torch.stack([(other_values * other_mask).sum(), other_mask.sum()])
            calls.append(total + other)
            return calls[-1]
        mean = calls[0][0] / calls[0][1]  # 2nd call: Σ squared deviations from the global mean
        return total + ((other_values - mean) ** 2 * other_mask).sum()

    across = masked_whiten(local[0][0], mask[rows[0]], all_reduce_sum)
    torch.testing.assert_close(across, masked_whiten(values, mask)[rows[0]])
    assert not torch.allclose(across, masked_whiten(local[0][0], mask[rows[0]]))  # not local


def test_leave_one_out_baseline_by_hand():
    # Two prompts × 3 samples; the score sits on each row's last real token.
    rewards = torch.tensor([[0.0, 3.0], [6.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 2.0], [2.0, 0.0]])
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1], [1, 1], [1, 0]])
    advantages = leave_one_out_advantages(rewards, mask, group_size=3)
    # group 1: R = 3, 6, 0 → A_i = R_i − mean of the other two = 0, 4.5, −4.5
    # group 2: R = 2, 2, 2 → no contrast, no advantage
    expected = torch.tensor(
        [[0.0, 0.0], [4.5, 0.0], [-4.5, -4.5], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    )
    assert torch.allclose(advantages, expected)


def test_leave_one_out_refuses_a_batch_that_does_not_split_into_groups():
    rewards, mask = torch.zeros(5, 2), torch.ones(5, 2)
    with pytest.raises(ValueError, match="does not split into groups of 2"):
        leave_one_out_advantages(rewards, mask, group_size=2)
    with pytest.raises(ValueError, match="groups of 1"):
        leave_one_out_advantages(rewards, mask, group_size=1)
