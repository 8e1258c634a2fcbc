"""The base of every parameter block: a typo in a parameter file is an error, not a silently
ignored key, and validated parameters cannot be changed while a node runs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LauncherParams(StrictModel):
    """How a training node runs: `inline` in the Kedro process, or `accelerate` (one process per
    device, DDP or DeepSpeed, as the accelerate config says)."""

    kind: Literal["inline", "accelerate"] = "inline"
    config_file: str | None = Field(
        None, description="an `accelerate config` YAML (multi-GPU, DeepSpeed ZeRO, FSDP)"
    )
    num_processes: int | None = Field(
        None, gt=0, description="processes to start; default: the config file's"
    )
    extra_args: list[str] = Field(
        default_factory=list, description="more `accelerate launch` flags, e.g. [--multi_gpu]"
    )
    timeout_seconds: float | None = Field(None, gt=0, description="stop a launch that hangs")

    @model_validator(mode="after")
    def _accelerate_only_settings(self) -> LauncherParams:
        tuned = self.config_file or self.num_processes or self.extra_args
        if self.kind == "inline" and tuned:
            raise ValueError(
                "config_file, num_processes and extra_args apply to kind: accelerate only"
            )
        return self
