"""The peft `LoraConfig` of a `lora` parameter block, shared by SFT, reward, PPO and DPO."""

from __future__ import annotations

from peft import LoraConfig

from alignment_stages.models.config import LoraParams


def lora_config(params: LoraParams, task_type: str) -> LoraConfig | None:
    """None when LoRA is off: the trainers then train every weight."""
    if not params.enabled:
        return None
    return LoraConfig(
        r=params.r,
        lora_alpha=params.alpha,
        lora_dropout=params.dropout,
        target_modules=list(params.target_modules),
        task_type=task_type,
    )
