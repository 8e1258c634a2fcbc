"""PPO across processes: the accelerator it runs on, the guards against processes that would
train alone, DeepSpeed's `auto` settings, and reductions over every process's batch."""

from __future__ import annotations

import logging
import os

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

logger = logging.getLogger(__name__)


def ppo_accelerator() -> Accelerator:
    """An Accelerator without mixed precision: PPO applies `precision` itself, around the
    matrix products only (models.precision).

    accelerate keeps one AcceleratorState per process. A TRL trainer that ran with bf16 earlier in
    the same process (the reward model, in a `kedro run`) leaves it at mixed_precision 'bf16', and
    a plain `Accelerator()` inherits that: every forward, the critic's and the fp32 log-probs
    included, then ran under bf16 autocast whatever `ppo.precision` said. So the accelerator part
    is reset, as transformers' TrainingArguments does before each trainer; the process group
    (PartialState) is kept.
    """
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", "no") != "no":
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")


def configure_deepspeed(
    accelerator: Accelerator, micro_batch_size: int, max_grad_norm: float, uses_critic: bool
) -> None:
    """Fill the DeepSpeed config's `auto` entries that accelerate takes from a dataloader,
    which PPO does not have (accelerate's DeepSpeed guide: "auto" values are filled in
    `prepare`, or must be set by hand).

    DeepSpeed clips inside `engine.step`, which `accelerator.backward` runs, with one norm
    over every gradient it holds: the policy and the critic can no longer be clipped each on
    its own (see `PPOTrainer._clip_gradients`).
    """
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return
    config = plugin.deepspeed_config
    for key, value in (
        ("train_micro_batch_size_per_gpu", micro_batch_size),
        ("gradient_clipping", max_grad_norm),
    ):
        if config.get(key, "auto") == "auto":
            config[key] = value
    if uses_critic:
        logger.warning(
            "DeepSpeed clips policy and critic with one joint gradient norm "
            "(gradient_clipping=%s); a large critic can starve a LoRA policy's updates",
            config["gradient_clipping"],
        )


def mean_across_processes(accelerator: Accelerator, stats: dict[str, float]) -> dict[str, float]:
    """Each statistic averaged over the processes (one process: unchanged)."""
    keys = sorted(stats)
    tensor = torch.tensor([stats[k] for k in keys], device=accelerator.device, dtype=torch.float64)
    reduced = accelerator.reduce(tensor, "mean")
    return dict(zip(keys, reduced.tolist(), strict=True))


def gradient_norm(norm) -> float:
    """A gradient norm as a float: under FSDP2 it is a DTensor, whose `full_tensor` gathers it."""
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def refuse_unsynchronised_processes(accelerator: Accelerator) -> None:
    """Stop a launch whose processes would each train alone. On a machine without CUDA,
    accelerate 1.15 turns an FSDP or DeepSpeed config into no distribution at all (seen with
    deploy/accelerate/fsdp.yaml: DistributedType.NO in both of two processes, and each rank's
    statistics its own), or counts every rank as rank 0 of 1; the main process's model would
    then silently be one rank's."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    alone = accelerator.num_processes > 1 and accelerator.distributed_type == DistributedType.NO
    if launched != accelerator.num_processes or alone:
        raise RuntimeError(
            f"{launched} processes were launched, but the accelerator runs "
            f"{accelerator.num_processes} with distributed type {accelerator.distributed_type}: "
            "each process would train alone. On CPU, DDP needs --multi_gpu, DeepSpeed an "
            "accelerator with InitProcessGroupKwargs(backend='gloo'), and FSDP a GPU "
            "(docs/deployment.md)"
        )


def clip_gradients(
    accelerator: Accelerator, groups: dict[str, list[torch.nn.Parameter]], max_norm: float
) -> dict[str, float]:
    """Each group (policy, critic) clipped on its own; returns each group's norm by its key.

    One joint norm is dominated by the larger model: a fully trained 134M critic beside a LoRA
    policy scaled the adapter's gradients below Adam's eps, and 12 SmolLM2 updates left the
    policy's KL to its reference at 0.0000. OpenRLHF's separate actor and critic optimisers clip
    the same way. Under DeepSpeed, `accelerator.backward` has already stepped: the engine clipped
    with one joint norm (`gradient_clipping`), and accelerate's `clip_grad_norm_` only reads it
    back, as `ppo/grad_norm`.
    """
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        first = next(iter(groups.values()))
        norm = accelerator.clip_grad_norm_(first, max_norm)
        return {} if norm is None else {"ppo/grad_norm": gradient_norm(norm)}
    return {
        key: gradient_norm(accelerator.clip_grad_norm_(group, max_norm))
        for key, group in groups.items()
    }
