"""The round contract every shaping algorithm fills: evaluate, snapshot, record, guard.

PPO's rounds (rounds.py), TRL's critic-free trainers (critic_free.py) and the stage probe's
short PPO all record their rounds here, so `ppo_history`, the gate and the evaluation cannot
tell them apart. The recorder evaluates through a `PolicyEvaluator` it is handed
(`evaluation.EvalProtocol` is the one every stage uses), so PPO does not depend on how a policy
is measured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.training import copy_sharing_frozen, strip_forward_wrappers
from alignment_stages.ppo.config import PPOShapingParams

logger = logging.getLogger(__name__)


class EvaluatedPolicy(Protocol):
    """One policy's evaluation, as a round records it."""

    @property
    def labels(self) -> list[str]: ...  # (N,) judged labels, in the protocol's fixed order

    def history_row(self) -> dict[str, Any]: ...  # metrics (docs/metrics.md) for ppo_history


class PolicyEvaluator(Protocol):
    """Measures a policy on fixed prompts and seeds; `previous_labels` gives the flip rate."""

    def evaluate(
        self, policy: ModelArtifact, previous_labels: Sequence[str] | None = None
    ) -> EvaluatedPolicy: ...


@dataclass(frozen=True)
class ShapingInputs:
    """What every shaping algorithm trains from (PPO, GRPO, RLOO, the probe's short PPO)."""

    base_policy: ModelArtifact  # the start; it stays untouched, training runs on a copy
    reward_model: ModelArtifact  # the proxy reward PPO optimises
    reward_model_metrics: dict[str, Any]  # its `score_chosen` statistics normalise the reward
    ppo_prompts: pd.DataFrame  # prompt_messages and category of every training prompt
    judges: JudgePanel  # the rule-based penalty on flagged rollouts (`ppo.judge_penalty`)
    evaluator: PolicyEvaluator  # measures round 0 and every healthy round


@dataclass
class ShapingResult:
    ppo_policy: ModelArtifact  # the last healthy round
    ppo_history: pd.DataFrame  # one row per round, round 0 = the starting policy
    round_policies: dict[str, ModelArtifact]  # "round_001" … for every healthy round
    stop_reason: str


def _detached_copy(model: Any) -> Any:
    """An evaluation copy of a model that may be mid-training.

    Frozen weights are shared with the live model, not copied: with LoRA a round costs its
    adapter, not another base model (3 SmolLM2 rounds held 1.6 GB of identical copies). A
    Trainer installs an instance-level `forward` closing over the original's bound method; a
    deepcopy keeps it and would run the live model's weights, not the snapshot's. Dropping it
    restores the class's `forward` on the copy (the live model keeps its own).
    """
    return strip_forward_wrappers(copy_sharing_frozen(model)).eval()


class RoundRecorder:
    """Round 0 is the starting policy, evaluated before any training. Each healthy round is
    snapshotted, evaluated with the same prompts and seeds, and checkpointed; a diverged round is
    recorded and the last healthy one stays the output. `early_stop_min_gain` ends the run when a
    round's eval reward gain falls below it.
    """

    def __init__(
        self,
        evaluator: PolicyEvaluator,
        start: ModelArtifact,
        params: PPOShapingParams,
        resumed: dict[str, Any] | None = None,
    ):
        self._evaluator, self._params, self._tokenizer = evaluator, params, start.tokenizer
        self.round_policies: dict[str, ModelArtifact] = {}
        self.policy, self.stop_reason = start, f"completed {params.rounds} rounds"
        if resumed is None:
            evaluated = evaluator.evaluate(start)
            self._labels = evaluated.labels
            self.history: list[dict[str, Any]] = [
                {"round": 0, "checkpoint": "base_policy", "healthy": True, "updates": 0,
                 **evaluated.history_row()}
            ]  # fmt: skip
        else:  # the rows and labels of the rounds a checkpoint holds (`restore_round`)
            self.history, self._labels = list(resumed["history"]), list(resumed["labels"])
        self._started = time.perf_counter()

    def state(self) -> dict[str, Any]:
        """The history so far and the last round's labels, for a round checkpoint."""
        return {"history": self.history, "labels": self._labels}

    def restore_round(self, round_index: int, model: Any) -> None:
        """Snapshot a checkpointed round's policy without evaluating it again."""
        snapshot = ModelArtifact(model=_detached_copy(model), tokenizer=self._tokenizer)
        self.round_policies[f"round_{round_index:03d}"], self.policy = snapshot, snapshot

    def start_round(self) -> None:
        self._started = time.perf_counter()

    def record_diverged(self, round_index: int, row: dict[str, Any], reason: str) -> None:
        self.history.append(
            {
                "round": round_index,
                **row,
                "checkpoint": None,
                "healthy": False,
                "stop_reason": reason,
            }
        )
        self.stop_reason = f"round {round_index} diverged: {reason}; kept round {round_index - 1}"
        logger.warning("%s/diverged round=%d %s", self._params.algorithm, round_index, reason)

    def record_healthy(self, round_index: int, model: Any, row: dict[str, Any]) -> bool:
        """Snapshot, evaluate and checkpoint the round; False when the run should stop early."""
        snapshot = ModelArtifact(model=_detached_copy(model), tokenizer=self._tokenizer)
        evaluated = self._evaluator.evaluate(snapshot, self._labels)
        self._labels, metrics = evaluated.labels, evaluated.history_row()
        name = f"round_{round_index:03d}"
        self.round_policies[name], self.policy = snapshot, snapshot
        seconds = time.perf_counter() - self._started
        self.history.append(
            {
                "round": round_index,
                **row,
                "checkpoint": name,
                "healthy": True,
                **metrics,  # with the generations, so that no later stage evaluates it again
                "seconds": seconds,
            }
        )
        logger.info(
            "%s/round=%d eval reward=%.3f violation_rate=%.3f kl_to_base=%.2f probe_perplexity=%.2f",
            self._params.algorithm, round_index, metrics["reward_mean"], metrics["violation_rate"],
            metrics["kl_to_base"], metrics["probe_perplexity"],
        )  # fmt: skip
        gain = metrics["reward_mean"] - self.history[-2]["reward_mean"]
        threshold = self._params.early_stop_min_gain
        if threshold is not None and round_index > 1 and gain < threshold:
            self.stop_reason = (
                f"round {round_index} gained {gain:.4f} < early_stop_min_gain={threshold}"
            )
            return False
        return True

    def result(self) -> ShapingResult:
        frame = pd.DataFrame(self.history)
        frame["reward_gain"] = frame["reward_mean"].diff()
        return ShapingResult(self.policy, frame, self.round_policies, self.stop_reason)
