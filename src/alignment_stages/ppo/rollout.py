"""Experience collection: the tensors PPO needs around responses sampled by `models.sampling`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ScoreNormalisation:
    """Reward-model score statistics on chosen answers (reward_model_metrics.score_chosen)."""

    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def from_metrics(cls, reward_model_metrics: dict) -> ScoreNormalisation:
        """From `reward_model_metrics["score_chosen"]`; a zero spread is floored at 1e-6."""
        chosen = reward_model_metrics["score_chosen"]
        return cls(chosen["mean"], max(chosen["std"], 1e-6))


NO_NORMALISATION = ScoreNormalisation()  # raw scores, as a reward function returns them


@dataclass
class Rollout:
    """One batch of experience. B = rollouts, Q = padded query length, R = response length."""

    query_responses: torch.Tensor  # (B, Q+R) left-padded query, then the response (pad after EOS)
    attention_mask: torch.Tensor  # (B, Q+R) 1 on real tokens
    context_length: int  # Q
    response_mask: torch.Tensor  # (B, R) 1 on response tokens up to and including the first EOS
    has_eos: torch.Tensor  # (B,) bool, the response ended with EOS within the budget
    logprobs: torch.Tensor  # (B, R) log π_old(a_t|s_t), logits / T
    ref_logprobs: torch.Tensor  # (B, R) log π_ref(a_t|s_t), logits / T
    values: torch.Tensor  # (B, R) V_old(s_t)
    raw_scores: torch.Tensor  # (B,) reward-model (or reward-function) score
    scores: torch.Tensor  # (B,) normalised, EOS-penalised, clipped score, less penalties
    penalties: torch.Tensor  # (B,) the judge-panel term taken from scores (zeros without one)

    @property
    def responses(self) -> torch.Tensor:  # (B, R)
        return self.query_responses[:, self.context_length :]


def unpadded_window(
    attention_mask: torch.Tensor, response_mask: torch.Tensor, context_length: int
) -> tuple[int, int]:
    """(first, response_kept) for a slice of a rollout batch: columns before `first` are left
    padding in every row, and response positions from `response_kept` on are past every row's EOS.

    A minibatch holds only some of the rollout's rows, so it usually needs fewer query columns
    than the widest prompt of the whole batch, and fewer response columns once the policy stops
    early. Cutting those columns changes no result (they are masked everywhere; position ids come
    from the mask) and saves their share of every forward and backward pass.
    """
    first = int(attention_mask[:, :context_length].any(dim=0).int().argmax())
    response_kept = max(1, int(response_mask.any(dim=0).sum()))  # each row's mask is a prefix
    return first, response_kept


class TokenValueModel(nn.Module):
    """The critic: the reward model's backbone and score head applied at every position, so
    V(s_t) starts from the reward model's judgement (Ouyang et al. 2022, appendix C.3).

    PPO's rewards are normalised scores, (score − mean) / std, so the head is rescaled into those
    units: W' = W / std, b' = (b − mean) / std. A critic left in raw reward-model units (std 0.11
    on SmolLM2) clipped 45% of its value updates and explained none of the return's variance.
    A LoRA reward model is merged first: its adapter belongs in the critic's weights.
    """

    def __init__(self, reward_model: nn.Module, score_mean: float = 0.0, score_std: float = 1.0):
        super().__init__()
        if hasattr(reward_model, "peft_config"):
            reward_model = reward_model.merge_and_unload()
        self.backbone = getattr(reward_model, reward_model.base_model_prefix)
        self.head = _normalised_head(reward_model.score, score_mean, score_std)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids
        ).last_hidden_state
        return self.head(hidden).squeeze(-1).float()  # (B, Q+R)


def _normalised_head(score: nn.Linear, mean: float, std: float) -> nn.Linear:
    head = nn.Linear(score.in_features, 1, bias=True, dtype=score.weight.dtype,
                     device=score.weight.device)  # fmt: skip
    with torch.no_grad():
        head.weight.copy_(score.weight / std)
        bias = score.bias if score.bias is not None else torch.zeros_like(head.bias)
        head.bias.copy_((bias - mean) / std)
    return head


def response_values(
    value_model: nn.Module,
    query_responses: torch.Tensor,
    attention_mask: torch.Tensor,
    context_length: int,
) -> torch.Tensor:
    """V(s_t) for each response token t: the state before it is the prefix ending at t − 1."""
    return value_model(query_responses, attention_mask)[:, context_length - 1 : -1]
