"""PPO updates in a row, with the guards that stop a run: the one loop that the shaping rounds
and the stage probe's short PPO both train through, so both stop where the other would."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from accelerate import PartialState
from tqdm.auto import tqdm

from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import NonFiniteLossError, PPOTrainer

logger = logging.getLogger(__name__)

# Called after every PPO update with (step, statistics): step counts updates across rounds, from
# 1. `alignment_stages.tracking.log_update_metrics` logs them live to MLflow.
UpdateCallback = Callable[[int, dict[str, float]], None]


@dataclass
class UpdateRun:
    """What `run_updates` did: each update's statistics, and why it stopped early, if it did."""

    stats: list[dict[str, float]] = field(default_factory=list)  # one per update that ran
    diverged: str | None = None  # a non-finite loss or the approx-KL ceiling; None when healthy
    seconds: float = 0.0  # wall time of the updates

    def row(self) -> dict[str, Any]:
        """The `ppo_history` columns of these updates: their count and mean statistics."""
        if not self.stats:
            return {"updates": 0}
        means = {key: sum(s[key] for s in self.stats) / len(self.stats) for key in self.stats[0]}
        return {"updates": len(self.stats), **means}


def divergence(stats: dict[str, float], params: PPOParams) -> str | None:
    """Why an update's statistics end the run, or None. The non-finite check is the trainer's
    (it raises `NonFiniteLossError`); this is the hard ceiling on the policy's step size."""
    if stats["ppo/approx_kl"] > params.max_approx_kl:
        return f"approx KL {stats['ppo/approx_kl']:.3f} above max_approx_kl={params.max_approx_kl}"
    return None


def run_updates(
    trainer: PPOTrainer,
    batches: Iterator[list[list[dict]]],
    params: PPOParams,
    count: int,
    first_step: int = 1,
    on_update: UpdateCallback | None = None,
    label: str = "ppo",
) -> UpdateRun:
    """Up to `count` PPO updates on the next batches; stops at the first divergence.

    Each update's key metrics go to the log and to `on_update` (main process only), and a
    progress bar counts them: a SmolLM2 update takes about a minute on a 2-core CPU, too long to
    wait for a round's end to see the curves.
    """
    main_process = PartialState().is_main_process
    run, started = UpdateRun(), time.perf_counter()
    progress = tqdm(range(count), desc=label, unit="update", disable=not main_process or count == 1)
    for update in progress:
        # 1. Roll out, score and optimise; a non-finite loss or statistic ends the run.
        try:
            stats = trainer.step(next(batches))
        except NonFiniteLossError as error:
            run.diverged = str(error)
            break
        run.stats.append(stats)
        # 2. Report the update.
        if on_update is not None and main_process:
            on_update(first_step + update, stats)
        progress.set_postfix(reward=f"{stats['ppo/reward']:.3f}", kl=f"{stats['ppo/kl']:.3f}",
                             clipfrac=f"{stats['ppo/clipfrac']:.3f}")  # fmt: skip
        logger.info(
            "%s update=%d reward=%.4f kl=%.4f clipfrac=%.3f judge_penalty=%.3f "
            "value_clipfrac=%.3f explained_variance=%.3f",
            label, first_step + update, stats["ppo/reward"], stats["ppo/kl"],
            stats["ppo/clipfrac"], stats["ppo/judge_penalty"],
            stats.get("ppo/value_clipfrac", float("nan")),
            stats.get("ppo/explained_variance", float("nan")),
        )  # fmt: skip
        # 3. Stop above the approx-KL ceiling: the policy stepped far outside the trust region.
        run.diverged = divergence(stats, params)
        if run.diverged:
            break
    run.seconds = time.perf_counter() - started
    return run
