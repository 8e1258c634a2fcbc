"""What every training node shares: seeding, device-appropriate precision, divergence guard."""

from __future__ import annotations

import copy
import math
import tempfile
import time
from typing import Any

import torch
from transformers import TrainerCallback, set_seed
from trl.trainer.utils import FusedCausalLMOutput

from alignment_stages.models.config import TrainingParams
from alignment_stages.models.precision import Precision, resolve_precision
from alignment_stages.tracking import trainer_reporting


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; nothing from this run is saved."""


class FiniteLossGuard(TrainerCallback):
    """Stops training at the first non-finite logged loss (Trainer's own NaN filter is off)."""

    def __init__(self, stage: str):
        self.stage = stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "train_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise TrainingDivergedError(
                    f"{self.stage}: {key} became {value} at step {state.global_step}; lower the "
                    "learning rate or check the data. Nothing from this run was saved."
                )


class StopAfterSeconds(TrainerCallback):
    """Ends training at the first optimizer step that finishes after `seconds` of training: a
    wall-time budget, so two trainers can be compared at equal measured compute."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._started = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self._started >= self.seconds:
            control.should_training_stop = True


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch from one configured seed.

    CPU kernels are already deterministic run to run; `torch.use_deterministic_algorithms`
    only adds checks there (about 20% of a PPO update, benchmarks/ppo_throughput.py). On a GPU,
    where atomics make kernels nondeterministic, deterministic kernels are switched on.
    """
    set_seed(seed, deterministic=torch.cuda.is_available())


def device_arguments(
    precision: Precision = "auto", model: torch.nn.Module | None = None
) -> dict[str, Any]:
    """Device and precision arguments of a TRL config. Activation (gradient) checkpointing stays
    off: on CPU it was 3-8x slower. It is named `activation_checkpointing`, as transformers 5
    renamed it; the old name warns that it goes in v6. bf16 is the resolved `precision` (models.precision): at the demo's tiny
    sizes it was slower on CPU too, at SmolLM2's it is not."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if model is not None:
        bf16 = resolve_precision(precision, model, device) == "bf16"
    else:
        bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda"
                                       and torch.cuda.is_bf16_supported())  # fmt: skip
    return {"use_cpu": device.type == "cpu", "bf16": bf16, "fp16": False,
            "activation_checkpointing": False}  # fmt: skip


def common_arguments(
    params: TrainingParams,
    seed: int,
    model: torch.nn.Module | None = None,
    *,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Trainer arguments shared by SFT, reward and DPO configs. Checkpoints are not written
    mid-run: the catalog saves the finished model atomically instead. The training curves go
    to MLflow, in a run named `run_name` nested in the Kedro run, when one is active."""
    return {
        "output_dir": tempfile.mkdtemp(prefix="alignment_stages_trainer_"),
        "num_train_epochs": params.epochs,
        "per_device_train_batch_size": params.batch_size,
        "learning_rate": params.learning_rate,
        "warmup_steps": params.warmup_ratio,  # a float below 1 is a ratio of all steps
        "weight_decay": params.weight_decay,
        "lr_scheduler_type": "cosine",
        "logging_steps": params.logging_steps,
        "logging_nan_inf_filter": False,
        "save_strategy": "no",
        **trainer_reporting(run_name),
        "seed": seed,
        "data_seed": seed,
        "dataloader_num_workers": 0,
        "max_length": params.max_length,
        **device_arguments(params.precision, model),
    }


def check_final_loss(stage: str, loss: float) -> None:
    if not math.isfinite(loss):
        raise TrainingDivergedError(f"{stage}: final training loss is {loss}. Nothing was saved.")


def detach_from_trainer(trainer) -> Any:
    """The trained model, free of the wrappers `accelerate` installed while training.

    Trainer leaves an instance-level `forward` (a mixed-precision wrapper closing over the
    original bound method). A later `copy.deepcopy` keeps that closure, so the copy silently
    runs - and trains - the original's weights. Removing it restores the class's `forward`.
    """
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    return strip_forward_wrappers(model)


def strip_forward_wrappers(model: Any) -> Any:
    """Drop instance-level `forward` wrappers, on every module of the tree, so each class's
    own `forward` runs again.

    Under peft the wrapper sits on the inner model too, and `merge_and_unload` returns that
    inner model: stripping only the outer `PeftModel` left SmolLM2's merged SFT base running
    the SFT model's bound `forward`, so PPO's LoRA copy of it never reached its own adapter.
    """
    for module in model.modules() if isinstance(model, torch.nn.Module) else [model]:
        for attribute in ("forward", "_original_forward"):
            module.__dict__.pop(attribute, None)
    return model


def copy_sharing_frozen(model: torch.nn.Module, *, share_all: bool = False) -> torch.nn.Module:
    """A deep copy of `model` whose frozen parameters and buffers are the original's tensors.

    Only what training will change needs its own memory. A LoRA round snapshot shares the whole
    base (134.5M parameters, 540 MB in fp32 for SmolLM2) with the live policy and copies the
    adapter (1.8M); `share_all=True` shares every parameter, for a copy that LoRA is about to
    wrap (peft freezes the base weights it wraps and trains only the new adapter tensors).
    Shared tensors must never be written in place: no `merge_and_unload` on such a copy.
    """
    shared = [p for p in model.parameters() if share_all or not p.requires_grad]
    shared += list(model.buffers())
    return copy.deepcopy(model, memo={id(tensor): tensor for tensor in shared})


def fused_head_from_logits(model: torch.nn.Module) -> bool:
    """Answer TRL's `fused_lm_head=True` forwards on `model` from its own logits; True if done.

    TRL 1.16's DPO and SFT trainers patch the model with a fused LM head
    (`trl.kernels.ChunkedLogProbFunction`) that never holds the (tokens, vocabulary) logits.
    That saves memory on a GPU. Without Triton (a CPU) it scores every position, prompt
    included, and folds each vocabulary tile in fp32 torch ops for the log-probs, entropy, mean
    logit and top-1, forward and backward: 1.36 s of a 2.85 s SFT step on SmolLM2-135M (8 × ~88
    tokens, bf16, 2 threads). From the logits it is one product and one log-softmax. The
    fields are TRL's (`FusedCausalLMOutput`), zero where the label is -100; entropy, mean
    logit and top-1 carry no gradient, as the trainers only log them. Models whose logits TRL
    soft-caps or scales, and pre-shifted labels, keep TRL's path.
    """
    config = model.config.get_text_config()
    scaled = ("final_logit_softcapping", "logit_scale", "output_multiplier",
              "lm_head_multiplier", "logits_scaling")  # fmt: skip
    fused_forward = model.__dict__.get("forward")
    if getattr(fused_forward, "from_logits", False):
        return True  # already
    if fused_forward is None or any(getattr(config, key, None) is not None for key in scaled):
        return False

    def forward(*args, fused_lm_head=False, labels=None, shift_labels=None,
                num_items_in_batch=None, **kwargs):  # fmt: skip
        if not fused_lm_head or labels is None or shift_labels is not None:
            return fused_forward(*args, fused_lm_head=fused_lm_head, labels=labels,
                                 shift_labels=shift_labels, num_items_in_batch=num_items_in_batch,
                                 **kwargs)  # fmt: skip
        kwargs["use_cache"] = False
        logits = fused_forward(*args, **kwargs).logits[:, :-1].float()
        targets = labels[:, 1:]
        mask = targets != -100
        log_softmax = torch.log_softmax(logits, dim=-1)
        log_probs = log_softmax.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        log_probs = log_probs.masked_fill(~mask, 0.0)
        with torch.no_grad():
            entropy = -(log_softmax.exp() * log_softmax).sum(-1).masked_fill(~mask, 0.0)
            mean_logits = logits.mean(-1).masked_fill(~mask, 0.0)
            is_top1 = (logits.argmax(-1) == targets) & mask
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs,
                                   entropy=entropy, mean_logits=mean_logits, is_top1=is_top1,
                                   label_mask=mask)  # fmt: skip

    forward.from_logits = True
    model.forward = forward
    return True


# The logits path is taken from this size up, where it was measured (SmolLM2-135M). Below it,
# TRL's own path stays: the demo's documented numbers (docs/gate.md, docs/performance.md) were
# trained through it, and a different summation order in SFT or DPO moves every later stage's
# sample.
LOGITS_HEAD_MIN_PARAMETERS = 50_000_000


def logits_head_off_gpu(model: torch.nn.Module) -> bool:
    """`fused_head_from_logits` on the model TRL patched (a PeftModel's base), unless it lives
    on a device where TRL's fused head runs its Triton kernels, or is below
    `LOGITS_HEAD_MIN_PARAMETERS`."""
    if next(model.parameters()).device.type in ("cuda", "xpu"):
        return False
    if sum(p.numel() for p in model.parameters()) < LOGITS_HEAD_MIN_PARAMETERS:
        return False
    return fused_head_from_logits(
        model.get_base_model() if hasattr(model, "peft_config") else model
    )
