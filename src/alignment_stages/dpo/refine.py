"""Start from the gate's selection and settle the policy with TRL's DPOTrainer."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import pandas as pd
from trl import DPOConfig, DPOTrainer

from alignment_stages.dpo.config import DPORefinementParams
from alignment_stages.evaluation.snapshot import sample_generations
from alignment_stages.gate.rules import SWITCHES
from alignment_stages.models import training
from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.lora import lora_config
from alignment_stages.reward.train import preference_dataset

logger = logging.getLogger(__name__)

# TRL log key → dpo_history column.
DPO_METRICS = {
    "loss": "loss",
    "rewards/margins": "reward_margin",
    "rewards/accuracies": "reward_accuracy",
    "rewards/chosen": "reward_chosen",
    "rewards/rejected": "reward_rejected",
}


class GateNotPassedError(RuntimeError):
    """The stability gate did not decide to switch to refinement."""


class UnjudgedStartPolicyError(ValueError):
    """The round policies loaded are not the ones the gate judged, or lack its selected round."""


def select_start_policy(
    gate_decision: dict[str, Any],
    round_policies: dict[str, Any],
    base_policy: ModelArtifact,
    *,
    on_unsettled: str,
) -> ModelArtifact:
    """The policy DPO starts from: the round the gate selected (round 0 is the base policy).

    `round_policies` carries the version it was loaded from (`version`, `pinned`): it must be
    the version the gate judged, unless the user pinned it
    (`--load-versions=ppo_round_policies:<version>`).
    """
    decision = gate_decision["decision"]
    if decision not in SWITCHES:
        reasons = "; ".join(gate_decision["reasons"])
        if on_unsettled != "proceed":
            raise GateNotPassedError(
                f"stability gate decided '{decision}': {reasons}. DPO is not run. Set "
                "stability_gate.on_unsettled: proceed to refine anyway."
            )
        logger.warning(
            "gate decided %s (%s); proceeding to DPO as on_unsettled=proceed", decision, reasons
        )
    checkpoint = gate_decision["selected_checkpoint"]
    if checkpoint == "base_policy":
        return base_policy
    judged = gate_decision.get("checkpoint_version")
    loaded = getattr(round_policies, "version", None)
    _check_judged_version(judged, loaded, getattr(round_policies, "pinned", False))
    if checkpoint not in round_policies:
        raise UnjudgedStartPolicyError(
            f"the stability gate selected {checkpoint!r} of ppo_round_policies version "
            f"{judged or 'unknown'}, but the version loaded ({loaded or 'unknown'}) has only "
            f"{sorted(round_policies)}. Pin the judged version with "
            "--load-versions=ppo_round_policies:<version>, or rerun stability_gate."
        )
    return round_policies[checkpoint]()


def _check_judged_version(judged: str | None, loaded: str | None, pinned: bool) -> None:
    """A newer PPO run saved after the gate ran is not what the gate judged: starting DPO from
    its round would refine an unjudged policy, silently."""
    if judged is None or loaded is None or judged == loaded:
        return
    if pinned:
        logger.warning(
            "DPO starts from ppo_round_policies version %s, pinned, while the gate judged %s",
            loaded,
            judged,
        )
        return
    raise UnjudgedStartPolicyError(
        f"the stability gate judged ppo_round_policies version {judged}, but version {loaded} "
        "was loaded (a newer PPO run, not judged). Rerun stability_gate on it, or start from "
        f"the judged one with --load-versions=ppo_round_policies:{judged} (pinning any "
        "version explicitly is accepted, with a warning)."
    )


class LogitsHeadDPOTrainer(DPOTrainer):
    """TRL's DPOTrainer, with the log-probs taken from the model's own logits where Triton is
    absent (`models.training.fused_head_from_logits`). Applied at the first forward, which may
    be the reference's precomputation inside `__init__`, after TRL patched its fused head."""

    def _logits_head(self) -> None:
        if getattr(self, "_logits_head_ready", False):
            return
        self._logits_head_ready = True
        for model in (self.model, self.ref_model):
            if model is not None:
                training.logits_head_off_gpu(model)

    def compute_ref_log_probs(self, model, inputs):
        self._logits_head()
        return super().compute_ref_log_probs(model, inputs)

    def _compute_loss(self, model, inputs, return_outputs):
        self._logits_head()
        return super()._compute_loss(model, inputs, return_outputs)


def refine_with_dpo(
    start: ModelArtifact,
    preference_train: pd.DataFrame,
    params: DPORefinementParams,
    *,
    max_steps: int | None = None,
    max_seconds: float | None = None,
) -> tuple[ModelArtifact, pd.DataFrame]:
    """DPO from `start`. `max_steps` (cycling over the pairs) or `max_seconds` of training
    replace the configured epochs: the stage probe matches PPO's budget with them."""
    training.seed_everything(params.seed)
    model = copy.deepcopy(start.model)  # the start policy (a PPO round) stays as it was
    if start.is_lora:
        # A LoRA PPO round: its adapter becomes part of the weights DPO starts from (and of the
        # reference); TRL refuses a PeftModel together with a new peft_config.
        model = model.merge_and_unload()
    peft = lora_config(params.lora, "CAUSAL_LM")
    # Without LoRA the reference must be passed: DPOTrainer would otherwise reload it from
    # `config._name_or_path` on disk and silently ignore the in-memory start policy. With LoRA
    # the reference is the same weights with the adapter disabled.
    reference = None if peft else copy.deepcopy(model).eval()
    budget: dict[str, Any] = {"max_steps": max_steps} if max_steps else {}
    if max_seconds:
        # No step count is known in advance: a constant rate instead of a cosine over an
        # unknown horizon, stopped by the clock.
        budget = {"max_steps": 10**9, "lr_scheduler_type": "constant", "warmup_steps": 0}
    trainer = LogitsHeadDPOTrainer(
        model=model,
        ref_model=reference,
        args=DPOConfig(
            **(
                training.common_arguments(
                    params.training, params.seed, model, run_name="dpo_refinement"
                )
                | budget
            ),
            beta=params.beta,
            loss_type=list(params.loss_type),
            loss_weights=params.loss_weights,
            precompute_ref_log_probs=params.precompute_ref_log_probs,
        ),
        train_dataset=preference_dataset(preference_train),
        processing_class=start.tokenizer,
        peft_config=peft,
        callbacks=[training.FiniteLossGuard("dpo_refinement")]
        + ([training.StopAfterSeconds(max_seconds)] if max_seconds else []),
    )
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    training.check_final_loss("dpo_refinement", result.training_loss)
    policy = ModelArtifact(
        model=training.detach_from_trainer(trainer).eval(), tokenizer=start.tokenizer
    )
    logged = [
        {
            "step": entry["step"],
            **{col: entry[key] for key, col in DPO_METRICS.items() if key in entry},
        }
        for entry in trainer.state.log_history
        if "loss" in entry and "step" in entry
    ]
    # A run shorter than `logging_steps` logs nothing per step; keep its final loss at least.
    history = pd.DataFrame(logged or [{"step": result.global_step, "loss": result.training_loss}])
    history = history.reindex(columns=["step", *DPO_METRICS.values()])
    prompts = preference_train.drop_duplicates("prompt_text").assign(
        prompt_id=lambda f: f["prompt_text"]
    )
    kl = sample_generations(policy, start, prompts, params.kl_eval).kl_to_base
    history["kl_to_start"] = float("nan")
    history.loc[history.index[-1], "kl_to_start"] = sum(kl) / len(kl)
    history["optimizer_steps"], history["seconds"] = float("nan"), float("nan")
    history.loc[history.index[-1], ["optimizer_steps", "seconds"]] = [result.global_step, seconds]
    logger.info(
        "dpo/loss=%.4f dpo/reward_accuracy=%.3f dpo/kl_to_start=%.3f",
        result.training_loss, history["reward_accuracy"].iloc[-1], history["kl_to_start"].iloc[-1],
    )  # fmt: skip
    return policy, history


def refine_with_dpo_stage(
    dpo_start_policy: ModelArtifact, preference_train: pd.DataFrame, params: DPORefinementParams
) -> dict[str, Any]:
    """The `dpo_refinement` stage as `alignment_stages.launcher` runs it, inline or launched."""
    policy, history = refine_with_dpo(dpo_start_policy, preference_train, params)
    return {"dpo_policy": policy, "dpo_history": history}
