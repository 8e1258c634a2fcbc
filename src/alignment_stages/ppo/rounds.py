"""PPO shaping as a sequence of rounds: train, evaluate on `eval_prompts`, checkpoint, guard.

One `ppo_history` row per round (round 0 is the starting policy), the stability gate reads
them. A round that diverges (non-finite loss, or approximate KL above the hard ceiling) is
recorded and ends the run; the output policy is the last healthy round.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from accelerate import PartialState
from tqdm.auto import tqdm

from alignment_stages.evaluation.memo import GENERATIONS_COLUMN, generations_to_json
from alignment_stages.evaluation.snapshot import evaluate_policy
from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.training import (
    copy_sharing_frozen,
    seed_everything,
    strip_forward_wrappers,
)
from alignment_stages.ppo.checkpoint import RoundCheckpoints, restore_rng_state
from alignment_stages.ppo.config import PPOShapingParams, category_counts
from alignment_stages.ppo.trainer import NonFiniteLossError, PPOTrainer, ScoreNormalisation
from alignment_stages.reward.ensemble import RewardEnsemble
from alignment_stages.reward.scoring import score_responses

logger = logging.getLogger(__name__)

# Called after every PPO update with (step, statistics): step counts updates across rounds, from
# 1. `alignment_stages.tracking.log_update_metrics` logs them live to MLflow.
UpdateCallback = Callable[[int, dict[str, float]], None]


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
    """The round contract every shaping algorithm fills (PPO here, GRPO/RLOO in critic_free.py).

    Round 0 is the starting policy, evaluated before any training. Each healthy round is
    snapshotted, evaluated with the same prompts and seeds, and checkpointed; a diverged round is
    recorded and the last healthy one stays the output. `early_stop_min_gain` ends the run when a
    round's eval reward gain falls below it.
    """

    def __init__(
        self,
        base_policy: ModelArtifact,
        reward_model: ModelArtifact,
        judges: JudgePanel,
        eval_prompts: pd.DataFrame,
        capability_probe: pd.DataFrame,
        params: PPOShapingParams,
        ensemble: RewardEnsemble | None = None,
        resumed: dict[str, Any] | None = None,
    ):
        self._evaluate = lambda policy, previous: evaluate_policy(  # noqa: E731
            policy,
            base_policy,
            reward_model,
            judges,
            eval_prompts,
            capability_probe,
            params.eval,
            previous,
            ensemble,
        )
        self._params, self._tokenizer = params, base_policy.tokenizer
        self.round_policies: dict[str, ModelArtifact] = {}
        self.policy, self.stop_reason = base_policy, f"completed {params.rounds} rounds"
        if resumed is None:
            metrics, generations, self._labels = self._evaluate(base_policy, None)
            self.history: list[dict[str, Any]] = [
                {"round": 0, "checkpoint": "base_policy", "healthy": True, "updates": 0, **metrics,
                 GENERATIONS_COLUMN: generations_to_json(generations)}
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
        metrics, generations, self._labels = self._evaluate(snapshot, self._labels)
        name = f"round_{round_index:03d}"
        self.round_policies[name], self.policy = snapshot, snapshot
        seconds = time.perf_counter() - self._started
        self.history.append(
            {
                "round": round_index,
                **row,
                "checkpoint": name,
                "healthy": True,
                **metrics,
                "seconds": seconds,
                # kept so that the evaluation stage need not evaluate this round again
                GENERATIONS_COLUMN: generations_to_json(generations),
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


class PromptCycle:
    """Seeded shuffles of `ppo_prompts`, one pass after another, in batches of `batch_size`
    rollouts: batch_size / samples_per_prompt prompts, each repeated samples_per_prompt times in
    consecutive rows (the groups `leave_one_out_advantages` reads). Its position is part of a
    round checkpoint, so a resumed run draws the batches the killed one would have."""

    def __init__(
        self, prompts: pd.DataFrame, batch_size: int, seed: int, samples_per_prompt: int = 1
    ):
        self._messages = [as_messages(p) for p in prompts["prompt_messages"]]
        self._rng = random.Random(seed)
        self._per_batch = batch_size // samples_per_prompt
        self._samples = samples_per_prompt
        self._order: list[int] = []

    def __iter__(self) -> Iterator[list[list[dict]]]:
        return self

    def __next__(self) -> list[list[dict]]:
        if len(self._order) < self._per_batch:
            refill = list(range(len(self._messages)))
            self._rng.shuffle(refill)
            self._order += refill
        batch, self._order = self._order[: self._per_batch], self._order[self._per_batch :]
        return [self._messages[i] for i in batch for _ in range(self._samples)]

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"rng": [version, list(internal), gauss], "order": list(self._order)}

    def restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._order = list(state["order"])


class CategoryMixCycle:
    """Batches holding each prompt category in a fixed share (`ppo.category_mix`): one seeded
    `PromptCycle` per category, their prompt groups interleaved in a seeded order.

    Why: with a uniform draw the majority category decides which way the shared behaviour
    moves. On SmolLM2 (ppo_prompts 62% benign) 24 updates taught the policy to stop refusing
    altogether: over-refusal on benign eval prompts fell 16% -> 1% while compliance with unsafe
    ones rose 86% -> 93% (docs/performance.md, run H). RLHF for safety fixes the mix of harmful
    and helpful prompts it trains on for the same reason (Bai et al. 2022, "Training a Helpful
    and Harmless Assistant with RLHF"; Dai et al. 2024, "Safe RLHF").
    """

    def __init__(
        self,
        prompts: pd.DataFrame,
        batch_size: int,
        seed: int,
        samples_per_prompt: int,
        mix: dict[str, float],
    ):
        counts = category_counts(mix, batch_size // samples_per_prompt)
        categories = prompts["category"] if "category" in prompts else pd.Series(dtype=object)
        present = categories.value_counts().to_dict()
        missing = [c for c, n in counts.items() if n and not present.get(c)]
        if missing:
            raise ValueError(
                f"ppo.category_mix asks for {missing}, but ppo_prompts has no prompt of that "
                f"category (it has {present or 'no categories'})"
            )
        left_out = len(prompts) - sum(present.get(c, 0) for c, n in counts.items() if n)
        if left_out:
            logger.info("ppo/category_mix leaves out %d ppo_prompts of unlisted categories",
                        left_out)  # fmt: skip
        self._strata = {
            category: PromptCycle(
                prompts[categories == category],
                n * samples_per_prompt,
                seed + index,
                samples_per_prompt,
            )
            for index, (category, n) in enumerate(counts.items())
            if n
        }
        self._samples = samples_per_prompt
        self._rng = random.Random(seed)

    def __iter__(self) -> Iterator[list[list[dict]]]:
        return self

    def __next__(self) -> list[list[dict]]:
        groups = []
        for stratum in self._strata.values():
            rows = next(stratum)
            groups += [rows[i : i + self._samples] for i in range(0, len(rows), self._samples)]
        self._rng.shuffle(groups)  # minibatches mix categories, groups stay whole
        return [row for group in groups for row in group]

    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "strata": {category: s.state() for category, s in self._strata.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        for category, stratum in self._strata.items():
            stratum.restore(state["strata"][category])


def cycle_prompts(
    prompts: pd.DataFrame,
    batch_size: int,
    seed: int,
    samples_per_prompt: int = 1,
    category_mix: dict[str, float] | None = None,
) -> PromptCycle | CategoryMixCycle:
    if category_mix is None:
        return PromptCycle(prompts, batch_size, seed, samples_per_prompt)
    return CategoryMixCycle(prompts, batch_size, seed, samples_per_prompt, category_mix)


def _train_round(
    trainer: PPOTrainer,
    batches,
    params: PPOShapingParams,
    round_index: int = 1,
    on_update: UpdateCallback | None = None,
) -> tuple[list[dict], str | None]:
    """Run one round's updates; returns their statistics and a divergence reason, if any.

    A progress bar per round (as the HF Trainer shows one), and each update's key metrics in
    the log and to `on_update` (main process only): a SmolLM2 update takes about a minute on a
    2-core CPU, too long to wait for the round's end to see the curves.
    """
    main_process = PartialState().is_main_process
    first_step = (round_index - 1) * params.updates_per_round + 1
    updates: list[dict[str, float]] = []
    progress = tqdm(range(params.updates_per_round), desc=f"ppo round {round_index}",
                    unit="update", disable=not main_process)  # fmt: skip
    for update in progress:
        try:
            stats = trainer.step(next(batches))
        except NonFiniteLossError as error:
            return updates, str(error)
        updates.append(stats)
        if on_update is not None and main_process:
            on_update(first_step + update, stats)
        progress.set_postfix(reward=f"{stats['ppo/reward']:.3f}", kl=f"{stats['ppo/kl']:.3f}",
                             clipfrac=f"{stats['ppo/clipfrac']:.3f}")  # fmt: skip
        logger.info(
            "ppo/round=%d update=%d reward=%.4f kl=%.4f clipfrac=%.3f judge_penalty=%.3f "
            "value_clipfrac=%.3f explained_variance=%.3f",
            round_index, update + 1, stats["ppo/reward"], stats["ppo/kl"], stats["ppo/clipfrac"],
            stats["ppo/judge_penalty"], stats.get("ppo/value_clipfrac", float("nan")),
            stats.get("ppo/explained_variance", float("nan")),
        )  # fmt: skip
        if stats["ppo/approx_kl"] > params.ppo.max_approx_kl:
            return (
                updates,
                f"approx KL {stats['ppo/approx_kl']:.3f} above max_approx_kl={params.ppo.max_approx_kl}",
            )
    return updates, None


def _prompt_key(messages) -> tuple:
    return tuple((m["role"], m["content"]) for m in messages)


def judge_penalties(
    judges: JudgePanel,
    prompts: Sequence[list[dict]],
    texts: Sequence[str],
    categories: Sequence[str | None],
    penalty: float,
) -> torch.Tensor:
    """(B,) `penalty` for each response the panel calls a violation, 0 for the rest: the
    rule-based reward term PPO and the critic-free trainers share (Mu et al. 2024)."""
    verdicts = judges.judge_batch(list(prompts), list(texts), list(categories))
    return penalty * torch.tensor([v.label == "violation" for v in verdicts], dtype=torch.float32)


def judge_penalty_fn(judges: JudgePanel, ppo_prompts: pd.DataFrame, judge_penalty: float):
    """`judge_penalty` (normalised units) per rollout the panel flags, or None when it is 0.

    A reward model learns what its pairs show; the demo's pairs do not show what a refusal of a
    real model looks like, so on SmolLM2 it pays for style, not for refusing. A rule-based term
    from the judges (Mu et al. 2024, "Rule Based Rewards for Language Model Safety") pays for
    exactly the behaviour the gate measures. The evaluation reports the reward model's score
    alone, so the gate's "reward up while the judges flag more" sign still reads the proxy.
    """
    if judge_penalty == 0:
        return None
    categories = {
        _prompt_key(as_messages(messages)): category
        for messages, category in zip(
            ppo_prompts["prompt_messages"], ppo_prompts["category"], strict=True
        )
    }

    def penalties(prompts, texts) -> torch.Tensor:
        prompt_categories = [categories.get(_prompt_key(p)) for p in prompts]
        return judge_penalties(judges, prompts, texts, prompt_categories, judge_penalty)

    return penalties


def _mean_stats(updates: list[dict[str, float]]) -> dict[str, float]:
    return (
        {key: sum(u[key] for u in updates) / len(updates) for key in updates[0]} if updates else {}
    )


def build_ppo_trainer(
    policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    judges: JudgePanel,
    params: PPOShapingParams,
) -> PPOTrainer:
    """The PPO trainer of a shaping run: rewards normalised by the chosen-score statistics of
    `reward_model_metrics`, the judge penalty, and LoRA when enabled (the stage probe builds
    its short PPO with this too)."""
    chosen = reward_model_metrics["score_chosen"]
    normalisation = ScoreNormalisation(chosen["mean"], max(chosen["std"], 1e-6))
    return PPOTrainer(
        policy=policy,
        critic_init=reward_model,
        score_fn=lambda prompts, texts, ids: score_responses(reward_model, prompts, texts),
        params=params.ppo,
        lora=params.lora if params.lora.enabled else None,
        normalisation=normalisation,
        penalty_fn=judge_penalty_fn(judges, ppo_prompts, params.ppo.judge_penalty),
    )


def run_shaping_rounds(
    base_policy: ModelArtifact,
    reward_model: ModelArtifact,
    reward_model_metrics: dict[str, Any],
    ppo_prompts: pd.DataFrame,
    eval_prompts: pd.DataFrame,
    capability_probe: pd.DataFrame,
    judges: JudgePanel,
    params: PPOShapingParams,
    ensemble: RewardEnsemble | None = None,
    checkpoints: RoundCheckpoints | None = None,
    on_update: UpdateCallback | None = None,
) -> ShapingResult:
    """PPO's rounds; with `checkpoints`, each healthy round is checkpointed and a run that
    finds completed rounds there continues after the last one (`ppo/checkpoint.py`)."""
    seed_everything(params.seed)
    parameters = params.model_dump(mode="json")
    resumed = _last_checkpoint(checkpoints, parameters)
    trainer = build_ppo_trainer(
        base_policy, reward_model, reward_model_metrics, ppo_prompts, judges, params
    )
    recorder = RoundRecorder(
        base_policy, reward_model, judges, eval_prompts, capability_probe, params, ensemble,
        resumed=resumed.state["recorder"] if resumed else None,
    )  # fmt: skip
    # Under `accelerate launch` every process rolls out its own prompts and samples, so one
    # update sees num_processes × rollout_batch_size episodes; one process is unchanged.
    process = PartialState()
    if process.num_processes > 1:
        torch.manual_seed(params.seed + process.process_index)
    batches = cycle_prompts(
        ppo_prompts,
        params.ppo.rollout_batch_size,
        params.seed + process.process_index,
        params.ppo.samples_per_prompt,
        params.ppo.category_mix,
    )
    first_round = 1
    if resumed is not None:
        first_round = _restore(resumed, checkpoints, trainer, recorder, batches, params, process)
    for round_index in range(first_round, params.rounds + 1):
        recorder.start_round()
        updates, diverged = _train_round(trainer, batches, params, round_index, on_update)
        row = {"updates": len(updates), **_mean_stats(updates)}
        if diverged:
            recorder.record_diverged(round_index, row, diverged)
            break
        go_on = recorder.record_healthy(round_index, trainer.unwrapped_policy, row)
        if checkpoints is not None and process.is_main_process:
            checkpoints.save(
                round_index,
                trainer.trained_weights(),
                trainer.state()["optimizer"],
                {
                    "parameters": parameters,
                    "kl_coef": trainer.kl_controller.value,
                    "prompts": batches.state(),
                    "recorder": recorder.state(),
                    "stop_reason": None if go_on else recorder.stop_reason,
                },
            )
        if not go_on:
            break
    return recorder.result()


def _last_checkpoint(checkpoints: RoundCheckpoints | None, parameters: dict[str, Any]):
    if checkpoints is None:
        return None
    checkpoints.check_parameters(parameters)  # before any work: a mismatch fails at once
    completed = checkpoints.completed_rounds()
    return checkpoints.load(completed[-1]) if completed else None


def _restore(resumed, checkpoints, trainer, recorder, batches, params, process) -> int:
    """Put the run back where round `resumed.round_index` ended; returns the next round."""
    for round_index in checkpoints.completed_rounds():
        if round_index < resumed.round_index:
            trainer.load_trained_weights(checkpoints.load_policy(round_index), policy_only=True)
            recorder.restore_round(round_index, trainer.unwrapped_policy)
    trainer.load_trained_weights(resumed.weights)
    recorder.restore_round(resumed.round_index, trainer.unwrapped_policy)
    trainer.load_state(resumed.optimizer, resumed.state["kl_coef"])
    batches.restore(resumed.state["prompts"])
    restore_rng_state(resumed.rng_tensors, resumed.state["rng"])
    if process.num_processes > 1:
        # The checkpoint holds the main process's sampling streams; the others are reseeded
        # apart from it, as at the start of a run (not bit-identical to an unkilled run).
        torch.manual_seed(params.seed + process.process_index + 1000 * resumed.round_index)
    if resumed.state["stop_reason"]:
        recorder.stop_reason = resumed.state["stop_reason"]
        return params.rounds + 1  # the run had already stopped early: nothing left to train
    logger.info(
        "ppo/resume from round %d of %d (%s)", resumed.round_index, params.rounds,
        checkpoints.folder,
    )  # fmt: skip
    return resumed.round_index + 1
