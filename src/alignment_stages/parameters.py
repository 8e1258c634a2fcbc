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


def category_counts(mix: dict[str, float], prompts: int) -> dict[str, int]:
    """Prompts per category in a draw of `prompts`: the shares rounded by largest remainder,
    so the counts always sum to `prompts`."""
    exact = {category: share * prompts for category, share in mix.items() if share > 0}
    counts = {category: int(value) for category, value in exact.items()}
    by_remainder = sorted(exact, key=lambda c: exact[c] - counts[c], reverse=True)
    for category in by_remainder[: prompts - sum(counts.values())]:
        counts[category] += 1
    return {category: counts.get(category, 0) for category in mix}


def check_category_mix(mix: dict[str, float], prompts: int, draw: str) -> None:
    """A `category_mix` (PPO's rollout batches, preference sampling's prompts) is shares that
    sum to 1 and give every listed category at least one of the `prompts` drawn; `draw` names
    that draw in the error, with `{prompts}` filled in."""
    if not mix or any(share < 0 for share in mix.values()):
        raise ValueError("category_mix needs at least one category and no negative share")
    if abs(sum(mix.values()) - 1) > 1e-6:
        raise ValueError(f"category_mix shares must sum to 1, got {sum(mix.values()):.4g}")
    empty = [c for c, n in category_counts(mix, prompts).items() if n == 0]
    if empty:
        raise ValueError(
            f"category_mix gives {empty} no prompt in {draw.format(prompts=prompts)}: raise "
            "their share or the number drawn"
        )


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
