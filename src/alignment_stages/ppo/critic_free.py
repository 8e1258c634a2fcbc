"""GRPO and RLOO through TRL's maintained trainers, filling the same round contract as PPO.

Each round continues training the same model for `updates_per_round` optimiser steps, then the
policy is evaluated and checkpointed exactly as in `rounds.py`, so `ppo_history`, the gate and
the evaluation cannot tell the algorithms apart. The reward is the same reward model, normalised
the same way, minus `judge_penalty` for judged violations when configured. One TRL trainer runs
all rounds, so the optimiser state and the learning-rate schedule carry across them.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from alignment_stages.judges.panel import JudgePanel
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.training import device_arguments, seed_everything
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.penalties import judge_penalties
from alignment_stages.ppo.recorder import RoundRecorder, ShapingInputs, ShapingResult
from alignment_stages.ppo.rollout import ScoreNormalisation
from alignment_stages.ppo.updates import UpdateCallback
from alignment_stages.reward.scoring import score_responses
from alignment_stages.tracking import trainer_reporting
from datasets import Dataset

logger = logging.getLogger(__name__)

# TRL log key → the history column it fills (undocumented keys are dropped).
TRL_METRICS = {
    "reward": "ppo/reward",
    "kl": "ppo/kl",
    "entropy": "ppo/entropy",
    "loss": "ppo/policy_loss",
    "completions/mean_length": "ppo/response_length",
    "clip_ratio/region_mean": "ppo/clipfrac",
}
TRAINERS = {"grpo": (GRPOTrainer, GRPOConfig), "rloo": (RLOOTrainer, RLOOConfig)}


def make_reward_function(
    reward_model: ModelArtifact,
    mean: float,
    std: float,
    judges: JudgePanel | None,
    judge_penalty: float,
) -> Callable[..., list[float]]:
    """TRL reward function: normalised reward-model score, minus a penalty per judged violation."""

    def reward(prompts, completions, category=None, **kwargs) -> list[float]:
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        messages = [as_messages(p) for p in prompts]
        scores = (score_responses(reward_model, messages, texts) - mean) / std
        if judges is not None and judge_penalty > 0:
            categories = category or [None] * len(texts)
            penalties = judge_penalties(judges, messages, texts, categories, judge_penalty)
            scores = scores - penalties.to(scores.device, scores.dtype)
        return scores.tolist()

    reward.__name__ = "reward_model"
    return reward


def trainer_config(algorithm: str, params: PPOShapingParams, steps: int, **overrides) -> Any:
    """The TRL config for `steps` optimiser steps; `overrides` set any other field of it (the
    benchmark matches PPO's minibatches and epochs with `steps_per_generation` and
    `num_iterations`)."""
    config_class = TRAINERS[algorithm][1]
    cf = params.critic_free
    settings = dict(
        output_dir=tempfile.mkdtemp(prefix="alignment_stages_trainer_"),
        max_steps=steps,
        per_device_train_batch_size=params.ppo.rollout_batch_size,
        num_generations=cf.num_generations,
        max_completion_length=params.ppo.response_length,
        temperature=params.ppo.temperature,
        learning_rate=cf.learning_rate,
        beta=cf.beta,
        max_grad_norm=params.ppo.max_grad_norm,
        adam_epsilon=params.ppo.adam_eps,
        logging_steps=1,
        logging_nan_inf_filter=False,
        save_strategy="no",
        **trainer_reporting(f"ppo_shaping/{algorithm}"),
        seed=params.seed,
        **device_arguments(),
    )
    return config_class(**{**settings, **overrides})


class RoundCallback(TrainerCallback):
    """Closes a round every `updates_per_round` optimiser steps: evaluate, checkpoint, guard.

    A non-finite TRL statistic ends the run at once with the round recorded as diverged, and the
    last healthy round stays the output, as in the PPO rounds.
    """

    def __init__(
        self,
        recorder: RoundRecorder,
        updates_per_round: int,
        on_update: UpdateCallback | None = None,
    ):
        self.recorder, self.updates_per_round = recorder, updates_per_round
        self.on_update = on_update
        self.logs: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        self.logs.append(logs)
        if self.on_update is not None and state.is_world_process_zero:
            mapped = {column: logs[key] for key, column in TRL_METRICS.items() if key in logs}
            self.on_update(state.global_step, mapped)
        bad = sorted(key for key, value in logs.items()
                     if isinstance(value, float) and not math.isfinite(value))  # fmt: skip
        if not bad and state.global_step % self.updates_per_round:
            return  # mid-round and healthy
        round_index = math.ceil(state.global_step / self.updates_per_round)
        stats = {
            column: sum(entry[key] for entry in self.logs) / len(self.logs)
            for key, column in TRL_METRICS.items()
            if all(key in entry for entry in self.logs)
        }
        row = {"updates": len(self.logs), **stats}
        self.logs = []
        if bad:
            self.recorder.record_diverged(round_index, row, f"non-finite TRL statistics: {bad}")
            control.should_training_stop = True
        elif self.recorder.record_healthy(round_index, model, row):
            self.recorder.start_round()
        else:
            control.should_training_stop = True


def run_critic_free_rounds(
    inputs: ShapingInputs,
    params: PPOShapingParams,
    on_update: UpdateCallback | None = None,
) -> ShapingResult:
    seed_everything(params.seed)
    base_policy, ppo_prompts = inputs.base_policy, inputs.ppo_prompts
    normalisation = ScoreNormalisation.from_metrics(inputs.reward_model_metrics)
    reward = make_reward_function(
        inputs.reward_model,
        normalisation.mean,
        normalisation.std,
        inputs.judges,
        params.critic_free.judge_penalty,
    )
    dataset = Dataset.from_list(
        [
            {"prompt": as_messages(p), "category": c}
            for p, c in zip(ppo_prompts["prompt_messages"], ppo_prompts["category"], strict=True)
        ]
    )
    trainer_class = TRAINERS[params.algorithm][0]
    model = copy.deepcopy(base_policy.model)  # the base policy stays untouched for later stages
    # TRL builds its KL reference by reloading `config._name_or_path` from disk and takes no
    # reference argument. A policy handed over in memory has no such path (or a stale one), so
    # the base is written to a scratch directory and named there: the reference is the base.
    reference_dir = tempfile.mkdtemp(prefix="alignment_stages_reference_")
    base_policy.model.save_pretrained(reference_dir, safe_serialization=True)
    model.config._name_or_path = reference_dir
    tokenizer = copy.deepcopy(base_policy.tokenizer)
    recorder = RoundRecorder(inputs.evaluator, base_policy, params)
    # One trainer for every round: Adam's moments and the learning-rate schedule run on across
    # rounds, as PPO's do; a callback closes each round after `updates_per_round` steps.
    rounds = RoundCallback(recorder, params.updates_per_round, on_update)
    trainer = trainer_class(
        model=model, reward_funcs=[reward],
        args=trainer_config(params.algorithm, params, params.rounds * params.updates_per_round),
        train_dataset=dataset.shuffle(seed=params.seed), processing_class=tokenizer,
        callbacks=[rounds],
    )  # fmt: skip
    recorder.start_round()
    trainer.train()
    return recorder.result()
