"""Validated parameters of the `stability_gate` pipeline (conf/base/parameters_stability_gate.yml).

Every threshold is a team's risk tolerance written down; docs/gate.md explains how to tune them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignment_stages.parameters import StrictModel


class StabilityGateParams(StrictModel):
    confidence: float = Field(
        0.95,
        gt=0,
        lt=1,
        description="two-sided confidence of every signal's interval; a chaos verdict, gains "
        "below costs and a hacking sign trigger only when their interval clears the threshold",
    )
    chaos_threshold: float = Field(
        0.10,
        ge=0,
        le=1,
        description="violation rate at temperature 1 above which behaviour is still chaotic",
    )
    oscillation_window: int = Field(
        3, ge=2, description="k: the last k rounds the swing is measured over"
    )
    oscillation_tolerance: float = Field(
        0.30,
        ge=0,
        le=1,
        description="largest acceptable oscillation (0 = none, 1 = pure back-and-forth)",
    )
    min_gain_per_round: float = Field(
        0.05, ge=0, description="eval reward gain per round below which PPO no longer pays off"
    )
    kl_price: float = Field(
        0.05, ge=0, description="reward units one nat of extra KL to base costs; gain must beat it"
    )
    max_capability_loss: float = Field(
        0.25,
        ge=0,
        description="relative probe-perplexity increase over the base that counts as capability loss",
    )
    max_length_drift: float = Field(0.5, ge=0, description="relative change of mean length vs base")
    max_diversity_drop: float = Field(
        0.5, ge=0, le=1, description="relative fall of distinct-2 vs base"
    )
    max_eos_drop: float = Field(
        0.3, ge=0, le=1, description="absolute fall of the EOS rate vs base"
    )
    max_ensemble_spread_growth: float = Field(
        0.5,
        ge=0,
        description="growth of the reward-model ensemble's spread over the base's (normalised "
        "units) that counts as over-optimisation (Coste et al. 2023)",
    )
    on_unsettled: Literal["stop", "proceed"] = Field(
        "stop",
        description="when the decision is not a switch: stop full_alignment, or warn and go on",
    )
