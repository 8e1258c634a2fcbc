"""KL coefficient controllers for the reward penalty −β·KL(π‖π_ref)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AdaptiveKLController:
    """Ziegler et al. 2019, §2.2: a proportional controller that steers the observed KL to a
    target. e_t = clip(KL_t / KL_target − 1, −0.2, 0.2);  β_{t+1} = β_t (1 + K_β e_t),
    with K_β = n_steps / horizon (n_steps: episodes in the batch)."""

    value: float
    target: float
    horizon: int

    def update(self, current_kl: float, n_steps: int) -> None:
        if n_steps >= 5 * self.horizon:
            # |e| ≤ 0.2, so the multiplier below is ≤ 0 and β would turn into a KL bonus
            raise ValueError(
                f"{n_steps} episodes per update need a KL horizon above {n_steps / 5:g} "
                f"(kl_horizon is {self.horizon})"
            )
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon


@dataclass
class FixedKLController:
    value: float

    def update(self, current_kl: float, n_steps: int) -> None:
        return None


def build_kl_controller(kind: str, init_coef: float, target: float, horizon: int):
    controllers = {
        "adaptive": lambda: AdaptiveKLController(init_coef, target, horizon),
        "fixed": lambda: FixedKLController(init_coef),
    }
    return controllers[kind]()
