"""The base of every parameter block: a typo in a parameter file or in `--params` is an error,
not a silently ignored key, a number that is not finite (`inf`, `nan`, `.inf`) is refused, and
validated parameters cannot be changed while a node runs."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    # allow_inf_nan=False: `ppo.kl_coef=inf` passed every bound (inf > 0) and trained one
    # round of NaN loss before anything noticed. No parameter here means anything at infinity.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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


class UnknownParameterError(ValueError):
    """A `--params` override names a top-level block that no pipeline reads."""


def _dotted_keys(value: Any, prefix: str) -> list[str]:
    if not isinstance(value, Mapping) or not value:
        return [prefix]
    return [key for name, child in value.items() for key in _dotted_keys(child, f"{prefix}.{name}")]


def check_override_blocks(overrides: Mapping[str, Any], known: Iterable[str]) -> None:
    """Refuse overrides of unknown blocks. Kedro merges them in as new keys that nothing reads,
    so a typo in a block name (`data_curaton.max_bad_fraction=0`) would change nothing, silently.
    Typos inside a block are the block's pydantic model's to catch (`extra="forbid"`)."""
    known = sorted(known)
    problems = []
    for block in sorted(set(overrides) - set(known)):
        close = difflib.get_close_matches(block, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"the blocks are {known}"
        names = ", ".join(_dotted_keys(overrides[block], block))
        problems.append(f"{names}: no pipeline reads a parameter block {block!r} ({hint})")
    if problems:
        raise UnknownParameterError("--params: " + "; ".join(problems))
