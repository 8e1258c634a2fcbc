"""PPO shaping as a sequence of rounds: train, evaluate on `eval_prompts`, checkpoint, guard.

One `ppo_history` row per round (round 0 is the starting policy), the stability gate reads
them. A round that diverges (non-finite loss, or approximate KL above the hard ceiling) is
recorded and ends the run; the output policy is the last healthy round.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from accelerate import PartialState

from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.checkpoint import RoundCheckpoints, restore_rng_state
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.penalties import judge_penalty_fn
from alignment_stages.ppo.prompt_cycles import cycle_prompts
from alignment_stages.ppo.recorder import RoundRecorder, ShapingInputs, ShapingResult
from alignment_stages.ppo.rollout import ScoreNormalisation
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.ppo.updates import UpdateCallback, run_updates
from alignment_stages.reward.scoring import score_responses

logger = logging.getLogger(__name__)


def build_ppo_trainer(inputs: ShapingInputs, params: PPOShapingParams) -> PPOTrainer:
    """The PPO trainer of a shaping run: rewards normalised by the chosen-score statistics of
    `reward_model_metrics`, the judge penalty, and LoRA when enabled (the stage probe builds
    its short PPO with this too)."""
    reward_model = inputs.reward_model
    return PPOTrainer(
        policy=inputs.base_policy,
        critic_init=reward_model,
        score_fn=lambda prompts, texts, ids: score_responses(reward_model, prompts, texts),
        params=params.ppo,
        lora=params.lora if params.lora.enabled else None,
        normalisation=ScoreNormalisation.from_metrics(inputs.reward_model_metrics),
        penalty_fn=judge_penalty_fn(inputs.judges, inputs.ppo_prompts, params.ppo.judge_penalty),
    )


def run_shaping_rounds(
    inputs: ShapingInputs,
    params: PPOShapingParams,
    checkpoints: RoundCheckpoints | None = None,
    on_update: UpdateCallback | None = None,
) -> ShapingResult:
    """PPO's rounds, each ended by `inputs.evaluator`'s measurement of the policy; with
    `checkpoints`, each healthy round is checkpointed and a run that finds completed rounds
    there continues after the last one (`ppo/checkpoint.py`)."""
    # 1. Seed, refuse a checkpoint of other parameters, build the trainer and evaluate round 0.
    seed_everything(params.seed)
    parameters = params.model_dump(mode="json")
    resumed = _last_checkpoint(checkpoints, parameters)
    trainer = build_ppo_trainer(inputs, params)
    recorder = RoundRecorder(
        inputs.evaluator, inputs.base_policy, params,
        resumed=resumed.state["recorder"] if resumed else None,
    )  # fmt: skip
    # 2. The prompt stream. Under `accelerate launch` every process rolls out its own prompts
    # and samples, so one update sees num_processes × rollout_batch_size episodes.
    process = PartialState()
    if process.num_processes > 1:
        torch.manual_seed(params.seed + process.process_index)
    batches = cycle_prompts(
        inputs.ppo_prompts,
        params.ppo.rollout_batch_size,
        params.seed + process.process_index,
        params.ppo.samples_per_prompt,
        params.ppo.category_mix,
    )
    first_round = 1
    if resumed is not None:
        first_round = _restore(resumed, checkpoints, trainer, recorder, batches, params, process)
    for round_index in range(first_round, params.rounds + 1):
        # 3. Train the round's updates; a divergence is recorded and ends the run.
        recorder.start_round()
        run = run_updates(
            trainer, batches, params.ppo, params.updates_per_round,
            first_step=(round_index - 1) * params.updates_per_round + 1,
            on_update=on_update, label=f"ppo round {round_index}",
        )  # fmt: skip
        if run.diverged:
            recorder.record_diverged(round_index, run.row(), run.diverged)
            break
        # 4. Evaluate and checkpoint the round.
        go_on = recorder.record_healthy(round_index, trainer.unwrapped_policy, run.row())
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
