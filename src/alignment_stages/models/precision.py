"""`precision: auto | fp32 | bf16`: bf16 autocast for the matrix products, fp32 for the rest.

Under `torch.autocast` the weights stay fp32 (the optimiser's master copy) and only the matrix
products run in bf16; every log-prob, loss and advantage here is taken after an explicit
`.float()` (models.logprobs, ppo.rollout.TokenValueModel, the sampler's float64 softmax), as
mixed-precision training prescribes (Micikevicius et al. 2018, "Mixed Precision Training").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

logger = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16"]

# Below this many parameters per-operator overhead dominates and bf16's casts cost more than its
# faster products save (../shared/LEARNED.md: bf16 was slower for the 459k demo model); at
# SmolLM2-135M a forward ran 3.3x faster on the avx512_bf16 CPU.
AUTO_BF16_MIN_PARAMETERS = 50_000_000


def device_runs_bf16_fast(device: torch.device) -> bool:
    """CUDA with bf16 support, or a CPU with avx512_bf16 or AMX tiles."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(
            getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
            or getattr(cpu, "_is_amx_tile_supported", lambda: False)()
        )
    return False


def resolve_precision(
    requested: Precision, model: torch.nn.Module, device: torch.device
) -> Literal["fp32", "bf16"]:
    """The precision a stage runs at: `auto` is bf16 where the device runs it fast and the model
    is large enough for the products to dominate, fp32 elsewhere."""
    if requested == "bf16" and not device_runs_bf16_fast(device):
        # Without avx512_bf16 or AMX, a CPU emulates bf16: a 2048² matmul ran at 0.3 GFLOP/s
        # against 136 in fp32 on an AMD EPYC (docs/performance.md).
        logger.warning(
            "precision bf16 was asked for on a %s without fast bf16 (no avx512_bf16 or AMX): "
            "bf16 products may run hundreds of times slower than fp32; 'auto' picks fp32 here",
            device.type,
        )
    if requested != "auto":
        return requested
    if not device_runs_bf16_fast(device):
        return "fp32"
    if device.type == "cuda":
        return "bf16"  # tensor cores: bf16 at every size
    parameters = sum(p.numel() for p in model.parameters())
    return "bf16" if parameters >= AUTO_BF16_MIN_PARAMETERS else "fp32"


def autocast(precision: Literal["fp32", "bf16"], device: torch.device):
    """A bf16 autocast context for `bf16`, a no-op for `fp32`."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def frozen_weights_cast_once(model: nn.Module, bf16: bool | None = None) -> Iterator[int]:
    """Under bf16 autocast, give every frozen nn.Linear a bf16 copy of its weight for the whole
    sampling loop (or PPO update); yields how many weights were swapped, and puts the fp32 ones
    back on exit. `bf16` None reads it from the autocast state at entry.

    Autocast caches its casts only for leaf tensors that require grad, so a LoRA base's frozen
    weights were cast again at every forward, at every decoding step: on SmolLM2-135M under bf16
    (16 x 48 tokens, 2 threads, avx512_bf16) the copies took 27% of a step's time, and bf16
    decoding ran only 1.1x faster than fp32. `Tensor.to(bfloat16)` rounds as autocast's cast
    does, so the sampled tokens are the same. A tied lm_head gets its own copy for the loop; the
    embedding keeps the fp32 weight. Every forward inside must run under bf16 autocast."""
    device_type = next(model.parameters()).device.type
    autocast_bf16 = bf16 if bf16 is not None else (
        torch.is_autocast_enabled(device_type)
        and torch.get_autocast_dtype(device_type) == torch.bfloat16
    )  # fmt: skip
    frozen = [
        module
        for module in model.modules()
        if isinstance(module, nn.Linear)
        and not module.weight.requires_grad
        and module.weight.dtype == torch.float32
        # A plain local tensor only: FSDP2's DTensors and ZeRO-3's partitioned placeholders are
        # gathered by hooks that expect their own parameter objects.
        and type(module.weight.data) is torch.Tensor
        and not hasattr(module.weight, "ds_id")
    ] if autocast_bf16 else []  # fmt: skip
    originals = [module.weight for module in frozen]
    try:
        with torch.no_grad():
            for module, weight in zip(frozen, originals, strict=True):
                module.weight = nn.Parameter(weight.to(torch.bfloat16), requires_grad=False)
        yield len(frozen)
    finally:
        for module, weight in zip(frozen, originals, strict=True):
            module.weight = weight


@contextlib.contextmanager
def scoring_precision(model: nn.Module, precision: Precision) -> Iterator[None]:
    """A no-grad scoring pass (reward scores, a perplexity) at `precision`, resolved for
    `model`, with its frozen weights cast once for the whole pass. Callers take their outputs
    to fp32 before any softmax or mean."""
    device = next(model.parameters()).device
    with autocast(resolve_precision(precision, model, device), device):
        with frozen_weights_cast_once(model):
            yield
