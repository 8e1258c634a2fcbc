"""Clipped losses against hand-computed values, and the KL controllers."""

import math

import pytest
import torch

from alignment_stages.ppo.kl_control import (
    AdaptiveKLController,
    FixedKLController,
    build_kl_controller,
)
from alignment_stages.ppo.losses import clipped_policy_loss, clipped_value_loss

ONE = torch.ones(1, 1, dtype=torch.bool)


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected_loss", "clipped"),
    [
        (1.5, 1.0, -1.2, True),  # positive advantage, ratio above 1 + ε: capped at 1.2
        (0.5, 1.0, -0.5, True),  # positive advantage, ratio below 1 − ε: unclipped min applies
        (0.5, -1.0, 0.8, True),  # negative advantage, ratio below 1 − ε: capped at 0.8
        (1.5, -1.0, 1.5, True),  # negative advantage, ratio above: the pessimistic bound
        (1.1, 2.0, -2.2, False),  # inside the trust region: plain ratio × advantage
    ],
)
def test_clipped_surrogate_by_hand(ratio, advantage, expected_loss, clipped):
    old = torch.zeros(1, 1)
    new = torch.full((1, 1), math.log(ratio))
    result = clipped_policy_loss(new, old, torch.full((1, 1), advantage), ONE, clip_range=0.2)
    assert result.loss.item() == pytest.approx(expected_loss)
    assert result.clipfrac.item() == (1.0 if clipped else 0.0)
    assert result.approx_kl.item() == pytest.approx((ratio - 1) - math.log(ratio), rel=1e-3)


def test_policy_loss_ignores_masked_tokens():
    new = torch.tensor([[0.0, 5.0]])
    mask = torch.tensor([[1, 0]]).bool()
    result = clipped_policy_loss(new, torch.zeros(1, 2), torch.ones(1, 2), mask, 0.2)
    assert result.loss.item() == pytest.approx(-1.0)


def test_clipped_value_loss_by_hand():
    # V_old = 0, V = 1, R = 2, ε_v = 0.2: clipped V = 0.2; max((1−2)², (0.2−2)²) / 2 = 1.62
    result = clipped_value_loss(
        torch.ones(1, 1), torch.zeros(1, 1), torch.full((1, 1), 2.0), ONE, 0.2
    )
    assert result.loss.item() == pytest.approx(1.62)
    assert result.clipfrac.item() == 1.0
    # Moving towards the return within the clip range: plain squared error.
    result = clipped_value_loss(
        torch.full((1, 1), 0.1), torch.zeros(1, 1), torch.full((1, 1), 0.1), ONE, 0.2
    )
    assert result.loss.item() == pytest.approx(0.0)


def test_adaptive_controller_follows_ziegler_et_al():
    controller = AdaptiveKLController(value=0.1, target=6.0, horizon=10000)
    controller.update(current_kl=12.0, n_steps=1000)  # error clipped to +0.2
    assert controller.value == pytest.approx(0.1 * (1 + 0.2 * 0.1))
    controller.update(current_kl=4.5, n_steps=1000)  # error −0.25 → clipped to −0.2
    assert controller.value == pytest.approx(0.1 * 1.02 * 0.98)
    controller.update(current_kl=6.6, n_steps=10000)  # error +0.1 over a full horizon
    assert controller.value == pytest.approx(0.1 * 1.02 * 0.98 * 1.1)


def test_fixed_controller_never_moves():
    controller = build_kl_controller("fixed", 0.2, 6.0, 10000)
    controller.update(100.0, 10**6)
    assert isinstance(controller, FixedKLController) and controller.value == 0.2


def test_adaptive_controller_refuses_a_horizon_that_would_turn_beta_negative():
    controller = AdaptiveKLController(value=0.1, target=6.0, horizon=10)
    with pytest.raises(ValueError, match="KL horizon above 10"):
        controller.update(current_kl=0.0, n_steps=50)  # 1 − 0.2·50/10 = 0
    assert controller.value == 0.1
