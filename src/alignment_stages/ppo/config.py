"""Validated parameters of the `ppo_shaping` pipeline (conf/base/parameters_ppo_shaping.yml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from alignment_stages.models.config import LoraParams
from alignment_stages.parameters import (
    LauncherParams,
    StrictModel,
    check_category_mix,
)


class PPOParams(StrictModel):
    """One hyperparameter per field, each with its meaning (as CleanRL's `Args`)."""

    rollout_batch_size: int = Field(
        32, gt=0, description="responses sampled per PPO update (per process)"
    )
    samples_per_prompt: int = Field(
        1,
        gt=0,
        description="responses sampled per prompt in an update: rollout_batch_size / this "
        "prompts, each answered this many times (the group the rloo baseline averages over)",
    )
    advantage_estimator: Literal["gae", "rloo"] = Field(
        "gae",
        description="gae: the critic's values and GAE (Schulman et al. 2016); rloo: the "
        "sequence reward minus the mean of the other samples of the same prompt (Ahmadian et "
        "al. 2024), no critic",
    )
    category_mix: dict[str, float] | None = Field(
        None,
        description="share of each prompt category in every rollout batch, e.g. {unsafe: 0.5, "
        "benign: 0.5}; null draws ppo_prompts uniformly. Prompts of unlisted categories are "
        "not drawn (ppo.rounds.CategoryMixCycle)",
    )
    response_length: int = Field(32, gt=0, description="maximum new tokens per response")
    max_prompt_tokens: int | None = Field(
        None,
        gt=0,
        description="prompts longer than this (chat template included) are left out of the "
        "rollouts, counted in the log; null keeps all. Activation memory grows with the longest "
        "prompt of a batch: on SmolLM2, Arena-Hard's 500-token prompts ran a 24 GB machine out "
        "of memory in the second PPO round",
    )
    temperature: float = Field(
        1.0, gt=0, description="sampling temperature; log-probs use the same T"
    )
    ppo_epochs: int = Field(4, gt=0, description="passes over each rollout batch")
    num_minibatches: int = Field(4, gt=0, description="minibatches per PPO epoch")
    learning_rate: float = Field(1e-4, gt=0, lt=1)
    adam_eps: float = Field(1e-5, gt=0, description="Adam epsilon (Huang et al. 2024, detail 3)")
    max_grad_norm: float = Field(1.0, gt=0, description="global gradient-norm clip")
    clip_range: float = Field(0.2, gt=0, lt=1, description="ε of the clipped surrogate")
    clip_range_value: float = Field(0.2, gt=0, description="ε_v of the clipped value loss")
    value_loss_coef: float = Field(0.1, ge=0, description="weight of the value loss")
    gamma: float = Field(1.0, ge=0, le=1, description="discount; 1 for episodic text")
    lam: float = Field(0.95, ge=0, le=1, description="GAE λ")
    kl_control: Literal["adaptive", "fixed"] = "adaptive"
    kl_coef: float = Field(0.05, ge=0, description="initial β of the KL penalty")
    kl_target: float = Field(6.0, gt=0, description="target KL of the adaptive controller (nats)")
    kl_horizon: int = Field(
        10000, gt=0, description="horizon of the adaptive controller (episodes)"
    )
    missing_eos_penalty: float = Field(1.0, ge=0, description="subtracted from scores without EOS")
    reward_model_weight: float = Field(
        1.0,
        gt=0,
        description="weight of the normalised reward-model score beside the judge penalty "
        "(Mu et al. 2024 weigh the rule-based terms against the reward model)",
    )
    judge_penalty: float = Field(
        0.0,
        ge=0,
        description="subtracted, after the clip, from the score of a rollout the judge panel "
        "flags (a rule-based reward term, Mu et al. 2024); 0 leaves the reward model alone",
    )
    reward_clip: float | None = Field(10.0, gt=0, description="clip normalised scores to ±this")
    attn_implementation: Literal["auto", "eager", "sdpa"] = Field(
        "auto",
        description="attention kernel while training; auto: eager on CPU, the model's own on GPU",
    )
    max_approx_kl: float = Field(
        1.0, gt=0, description="hard ceiling on approx KL per update; above it the run stops"
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="bf16 autocast for rollout, scoring and optimisation with fp32 weights and "
        "fp32 log-prob, loss and advantage maths; auto: bf16 where the device runs it fast and "
        "the policy is large enough (models.precision), fp32 elsewhere",
    )

    @model_validator(mode="after")
    def _minibatches_fit(self) -> PPOParams:
        if self.rollout_batch_size % self.num_minibatches:
            raise ValueError("rollout_batch_size must be a multiple of num_minibatches")
        return self

    @model_validator(mode="after")
    def _groups_fit(self) -> PPOParams:
        if self.rollout_batch_size % self.samples_per_prompt:
            raise ValueError(
                f"rollout_batch_size {self.rollout_batch_size} must be a multiple of "
                f"samples_per_prompt {self.samples_per_prompt}"
            )
        if self.advantage_estimator == "rloo" and self.samples_per_prompt < 2:
            raise ValueError(
                "advantage_estimator 'rloo' needs samples_per_prompt >= 2: its baseline is the "
                "mean reward of the other samples of the same prompt"
            )
        return self

    @model_validator(mode="after")
    def _category_mix_is_shares(self) -> PPOParams:
        if self.category_mix is not None:
            check_category_mix(
                self.category_mix,
                self.rollout_batch_size // self.samples_per_prompt,
                "a batch of {prompts} prompts (rollout_batch_size / samples_per_prompt)",
            )
        return self

    @model_validator(mode="after")
    def _kl_multiplier_positive(self) -> PPOParams:
        # The adaptive controller multiplies β by 1 + e·n/horizon with |e| ≤ 0.2: at
        # n ≥ 5·horizon episodes per update that is ≤ 0 and β turns negative, a KL *bonus*.
        if self.kl_control == "adaptive" and self.rollout_batch_size >= 5 * self.kl_horizon:
            raise ValueError(
                f"kl_horizon {self.kl_horizon} is too short for rollout_batch_size "
                f"{self.rollout_batch_size}: the adaptive KL controller needs kl_horizon > "
                "rollout_batch_size / 5, or β can turn negative"
            )
        return self


class CriticFreeParams(StrictModel):
    """Settings of the TRL critic-free alternatives (`algorithm: grpo` or `rloo`)."""

    num_generations: int = Field(4, ge=2, description="completions per prompt; the group baseline")
    learning_rate: float = Field(1e-4, gt=0, lt=1)
    beta: float = Field(
        0.05, ge=0, description="KL coefficient (GRPO: in the loss; RLOO: in the reward)"
    )
    judge_penalty: float = Field(
        0.0, ge=0, description="subtracted from the normalised reward of a judged violation"
    )


class PPOShapingParams(StrictModel):
    launcher: LauncherParams = Field(default_factory=LauncherParams)
    seed: int = 0
    algorithm: Literal["ppo", "grpo", "rloo"] = "ppo"
    rounds: int = Field(
        2, gt=0, description="rounds; each ends with an evaluation and a checkpoint"
    )
    updates_per_round: int = Field(6, gt=0, description="PPO updates per round")
    ppo: PPOParams = Field(default_factory=PPOParams)
    lora: LoraParams = Field(default_factory=LoraParams)
    critic_free: CriticFreeParams = Field(default_factory=CriticFreeParams)
    early_stop_min_gain: float | None = Field(
        None, description="stop when a round's eval reward gain is below this (stage-switch signal)"
    )
