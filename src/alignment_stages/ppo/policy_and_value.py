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

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.ppo.rollout import response_values


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
