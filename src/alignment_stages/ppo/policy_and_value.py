"""Policy and critic as one module, so that `accelerator.prepare` sees a single model.

accelerate gives DeepSpeed one engine per model, and `Accelerator.prepare` raises an
AssertionError ("multiple models when using DeepSpeed") when it is handed two; FSDP2 refuses a
second model too ("Only one model is supported when using FSDP2"). TRL's PPOTrainer hit the same
wall and wrapped both in `PolicyAndValueWrapper` (trl/experimental/ppo/ppo_trainer.py in TRL
1.12, the last release with PPO), whose one `forward` ran the policy and the critic. This module
does the same, so one `prepare` covers both, under DDP, DeepSpeed ZeRO and FSDP alike.

Training must call the prepared wrapper itself: DDP synchronises gradients, DeepSpeed and FSDP
gather shards, only for a forward that enters through the wrapped module. Rollouts, the
reference and evaluation take no gradient and read `policy` / `value_model` of the unwrapped
wrapper directly.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from peft import get_peft_model
from torch import nn

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import LoraParams
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.lora import lora_config
from alignment_stages.models.training import copy_sharing_frozen
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.rollout import ScoreNormalisation, TokenValueModel, response_values


class PolicyAndValueOutput(NamedTuple):
    """A NamedTuple, not a dataclass: DDP and FSDP2 find the output tensors with pytree, which
    walks tuples but treats an unregistered dataclass as one opaque leaf."""

    logprobs: torch.Tensor  # (B, R) log π(a_t|s_t) at logits / T
    entropy: torch.Tensor  # (B, R) the policy's entropy, no gradient
    values: torch.Tensor | None  # (B, R) V(s_t); None without a critic (rloo)


class PolicyAndValue(nn.Module):
    """The trained policy and, with GAE, its critic (`TokenValueModel`); `value_model` is None
    for the critic-free `rloo` estimator, whose wrapper then holds the policy alone."""

    def __init__(self, policy: nn.Module, value_model: nn.Module | None = None):
        super().__init__()
        self.policy = policy
        self.value_model = value_model

    @property
    def _no_split_modules(self) -> list[str]:
        """The decoder-layer classes accelerate's FSDP `TRANSFORMER_BASED_WRAP` shards by; it
        reads them from the prepared model, which is this wrapper and not the checkpoint."""
        names = set(getattr(self.policy, "_no_split_modules", None) or [])
        if self.value_model is not None:
            backbone = getattr(self.value_model, "backbone", self.value_model)
            names |= set(getattr(backbone, "_no_split_modules", None) or [])
        return sorted(names)

    def forward(
        self,
        query_responses: torch.Tensor,  # (B, Q+R)
        attention_mask: torch.Tensor,  # (B, Q+R)
        context_length: int,
        temperature: float = 1.0,
        banned_token_ids: Sequence[int] = (),
    ) -> PolicyAndValueOutput:
        logprobs, entropy = response_logprobs(
            self.policy, query_responses, attention_mask, context_length, temperature,
            banned_token_ids,
        )  # fmt: skip
        values = (
            response_values(self.value_model, query_responses, attention_mask, context_length)
            if self.value_model is not None
            else None
        )
        return PolicyAndValueOutput(logprobs, entropy, values)


def disable_dropout(model: torch.nn.Module) -> None:
    """Dropout makes π_old and π differ even before any update (Huang et al. 2024, detail 5).

    Attention dropout is no module: Llama-style attention reads its own `attention_dropout`
    float (copied from `config.attention_dropout`) whenever it is in train mode.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
        config = getattr(module, "config", None)
        if isinstance(getattr(config, "attention_dropout", None), float):
            config.attention_dropout = 0.0


class BuiltModels(NamedTuple):
    wrapper: PolicyAndValue  # the trained policy (LoRA-wrapped or a full copy) and critic
    reference: nn.Module | None  # the frozen reference; None with LoRA (the adapter disabled)


def build_policy_and_value(
    policy: ModelArtifact,
    critic_init: ModelArtifact,
    params: PPOParams,
    lora: LoraParams | None,
    normalisation: ScoreNormalisation,
) -> BuiltModels:
    """The models one PPO run trains, in train mode with dropout off.

    The policy trains on a copy: the input artifact (the base policy) stays untouched for later
    stages. With LoRA the reference is the same weights with the adapter disabled, and the copy
    shares the input's frozen weights instead of copying them; without LoRA, the untouched input
    model is the reference, so there is no second copy. `normalisation` (the reward model's
    score statistics) rescales the critic's head into the units of PPO's rewards.
    """
    peft = lora_config(lora, "CAUSAL_LM") if lora else None
    if peft:
        trainable, reference = get_peft_model(copy_sharing_frozen(policy.model, share_all=True),
                                              peft), None  # fmt: skip
    else:
        trainable, reference = copy.deepcopy(policy.model), policy.model.eval()
    # rloo's baseline is the other samples of the same prompt: no critic is built, which saves a
    # model copy, its Adam state and about 60% of the optimisation FLOPs.
    critic = copy.deepcopy(critic_init.model) if params.advantage_estimator == "gae" else None
    if hasattr(critic, "peft_config"):
        critic = critic.merge_and_unload()  # the critic's own copy; the reward model stays
    attention = params.attn_implementation
    if attention == "auto" and not torch.cuda.is_available():
        attention = "eager"  # on CPU, for short sequences, ~10% faster per update than SDPA
    if attention != "auto":
        for model in (trainable, critic):
            if model is not None:
                model.set_attn_implementation(attention)
    value_model = TokenValueModel(critic, normalisation.mean, normalisation.std) if critic else None
    wrapper = PolicyAndValue(trainable, value_model)
    disable_dropout(wrapper)
    wrapper.train()
    return BuiltModels(wrapper, reference)
