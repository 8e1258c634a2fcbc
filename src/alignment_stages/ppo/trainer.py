"""One PPO update, read top to bottom: 1 rollout, 2 score, 3 reward, 4 advantages, 5 optimise.

Runs through `accelerate`, so the same code runs on CPU, one GPU, or under
`accelerate launch` (DDP, DeepSpeed ZeRO, FSDP); policy and critic are prepared as one module
(`policy_and_value.py`), and statistics are reduced across processes (`distributed.py`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch
from accelerate import Accelerator

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import LoraParams
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.precision import autocast, frozen_weights_cast_once, resolve_precision
from alignment_stages.models.sampling import (
    encode_prompts,
    eos_token_ids,
    sample_responses,
    unsampled_token_ids,
)
from alignment_stages.ppo.advantages import (
    explained_variance,
    generalized_advantage_estimation,
    leave_one_out_advantages,
    masked_mean,
    masked_whiten,
    per_token_rewards,
)
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.distributed import (
    clip_gradients,
    configure_deepspeed,
    mean_across_processes,
    ppo_accelerator,
    refuse_unsynchronised_processes,
)
from alignment_stages.ppo.kl_control import build_kl_controller
from alignment_stages.ppo.losses import clipped_policy_loss, clipped_value_loss
from alignment_stages.ppo.policy_and_value import build_policy_and_value
from alignment_stages.ppo.rollout import (
    NO_NORMALISATION,
    Rollout,
    ScoreNormalisation,
    TokenValueModel,
    response_values,
    unpadded_window,
)

logger = logging.getLogger(__name__)

# score_fn(prompts, response_texts, response_token_ids) -> (B,) raw scores
ScoreFn = Callable[[Sequence[Sequence[dict]], list[str], list[list[int]]], torch.Tensor]
# penalty_fn(prompts, response_texts) -> (B,) non-negative penalties in normalised units
PenaltyFn = Callable[[Sequence[Sequence[dict]], list[str]], torch.Tensor]


class NonFiniteLossError(RuntimeError):
    """A PPO loss or statistic became NaN or infinite."""


class PPOTrainer:
    def __init__(
        self,
        policy: ModelArtifact,
        critic_init: ModelArtifact,
        score_fn: ScoreFn,
        params: PPOParams,
        lora: LoraParams | None = None,
        normalisation: ScoreNormalisation = NO_NORMALISATION,
        accelerator: Accelerator | None = None,
        penalty_fn: PenaltyFn | None = None,
    ):
        self.params, self.score_fn, self.normalisation = params, score_fn, normalisation
        self.penalty_fn, self.tokenizer = penalty_fn, policy.tokenizer
        self.banned = unsampled_token_ids(
            self.tokenizer, eos_token_ids(policy.model, self.tokenizer)
        )
        # 1. The accelerator: no mixed precision of its own, every process synchronised.
        self.accelerator = accelerator or ppo_accelerator()
        if self.accelerator.mixed_precision != "no":
            raise ValueError(
                f"the accelerator's mixed_precision '{self.accelerator.mixed_precision}' would "
                "autocast every forward, the fp32 log-probs included; set ppo.precision instead"
            )
        refuse_unsynchronised_processes(self.accelerator)
        # 2. The trained policy and critic as one module, and the frozen reference.
        built = build_policy_and_value(policy, critic_init, params, lora, normalisation)
        self.reference, self.uses_critic = built.reference, built.wrapper.value_model is not None
        # 3. One optimiser for both, prepared together: DeepSpeed and FSDP2 take one model.
        optimizer = torch.optim.Adam(
            [p for p in built.wrapper.parameters() if p.requires_grad],
            lr=params.learning_rate,
            eps=params.adam_eps,
            fused=True,  # one kernel for all parameters: ~4x faster steps than the per-tensor loop
        )
        configure_deepspeed(
            self.accelerator,
            max(1, params.rollout_batch_size // params.num_minibatches),
            params.max_grad_norm,
            self.uses_critic,
        )
        self.model, self.optimizer = self.accelerator.prepare(built.wrapper, optimizer)
        # Read back after `prepare`: FSDP2 replaces each parameter with a sharded DTensor.
        self._policy_params = [p for p in self.unwrapped_policy.parameters() if p.requires_grad]
        critic = self.value_model
        self._value_params = [p for p in critic.parameters() if p.requires_grad] if critic else []
        if self.reference is not None:
            self.reference.to(self.accelerator.device)
        # 4. The KL controller, checked against every process's episodes together.
        self.kl_controller = build_kl_controller(
            params.kl_control, params.kl_coef, params.kl_target, params.kl_horizon
        )
        episodes = params.rollout_batch_size * self.accelerator.num_processes
        if params.kl_control == "adaptive" and episodes >= 5 * params.kl_horizon:
            raise ValueError(
                f"kl_horizon {params.kl_horizon} is too short for {episodes} episodes per update "
                "across processes: the adaptive KL controller's β would turn negative"
            )
        self.precision = resolve_precision(
            params.precision, self.unwrapped_policy, self.accelerator.device
        )
        self.timings: dict[str, float] = defaultdict(float)

    @property
    def unwrapped_policy(self):
        """The trained policy, out of any DDP / DeepSpeed / FSDP wrapper: sampling, the LoRA
        reference and the round snapshots use it (no gradient flows through it)."""
        return self.accelerator.unwrap_model(self.model).policy

    @property
    def value_model(self) -> TokenValueModel | None:
        """The critic, unwrapped like `unwrapped_policy`; None with `advantage_estimator: rloo`."""
        return self.accelerator.unwrap_model(self.model).value_model

    def trained_weights(self) -> dict[str, torch.Tensor]:
        """Every trained tensor by name: the policy's (the LoRA adapter, or every weight) as
        `policy.<name>`, the critic's as `critic.<name>`."""
        weights = {
            f"policy.{name}": p.detach()
            for name, p in self.unwrapped_policy.named_parameters()
            if p.requires_grad
        }
        if self.value_model is not None:
            critic = self.value_model.named_parameters()
            weights.update({f"critic.{name}": p.detach() for name, p in critic})
        return weights

    def load_trained_weights(self, weights: dict[str, torch.Tensor], policy_only: bool = False):
        """Copy `trained_weights()` back in place; every trained tensor must be there."""
        targets = {
            f"policy.{name}": p
            for name, p in self.unwrapped_policy.named_parameters()
            if p.requires_grad
        }
        if self.value_model is not None and not policy_only:
            targets.update({f"critic.{name}": p for name, p in self.value_model.named_parameters()})
        missing = sorted(set(targets) - set(weights))
        if missing:
            raise KeyError(f"the checkpoint lacks {len(missing)} trained tensors: {missing[:3]}")
        with torch.no_grad():
            for name, target in targets.items():
                target.copy_(weights[name])

    def state(self) -> dict:
        """Optimiser and KL controller: what an update reads besides the weights."""
        return {"optimizer": self.optimizer.state_dict(), "kl_coef": self.kl_controller.value}

    def load_state(self, optimizer: dict, kl_coef: float) -> None:
        self.optimizer.load_state_dict(optimizer)
        self.kl_controller.value = kl_coef

    def _reference_logprobs(self, query_responses, attention_mask, context_length) -> torch.Tensor:
        """log π_ref: the frozen input model, or with LoRA the policy with its adapter off."""
        policy = self.unwrapped_policy
        model = self.reference if self.reference is not None else policy
        adapter_off = policy.disable_adapter() if self.reference is None else nullcontext()
        with adapter_off:
            return response_logprobs(model, query_responses, attention_mask, context_length,
                                     self.params.temperature, self.banned)[0]  # fmt: skip

    def _normalise(self, raw: torch.Tensor, has_eos: torch.Tensor) -> torch.Tensor:
        scores = self.params.reward_model_weight * (raw - self.normalisation.mean)
        scores = scores / self.normalisation.std
        scores = scores - self.params.missing_eos_penalty * (~has_eos).float()
        if self.params.reward_clip is not None:
            scores = scores.clamp(-self.params.reward_clip, self.params.reward_clip)
        return scores

    @torch.no_grad()
    def collect_rollout(self, prompts: Sequence[Sequence[dict]]) -> Rollout:
        device, p = self.accelerator.device, self.params
        # 1. Rollout: sample responses with the KV cache.
        start = time.perf_counter()
        input_ids, prompt_mask = encode_prompts(self.tokenizer, prompts, device)
        self.unwrapped_policy.eval()
        with autocast(self.precision, device):
            # π_old is recomputed below with a full forward rather than read off the sampler:
            # the update's first ratio must be exactly 1, and the KV-cached decoding steps
            # round differently from the training forward.
            query_responses, attention_mask, response_mask, has_eos, _ = sample_responses(
                self.unwrapped_policy,
                self.tokenizer,
                input_ids,
                prompt_mask,
                p.response_length,
                p.temperature,
            )
        self.timings["generation"] += time.perf_counter() - start

        # 2. Score: the reward on the text up to the first EOS; π_old, π_ref and V_old.
        start = time.perf_counter()
        context_length = input_ids.shape[1]
        responses = query_responses[:, context_length:]
        response_ids = [
            row[mask].tolist() for row, mask in zip(responses, response_mask, strict=True)
        ]
        texts = self.tokenizer.batch_decode(responses, skip_special_tokens=True)
        # Inference mode skips autograd bookkeeping; the products below, taken outside it, are
        # ordinary tensors that the update may use.
        with (
            torch.inference_mode(),
            autocast(self.precision, device),
            frozen_weights_cast_once(self.unwrapped_policy),  # π_old and π_ref: one cast
        ):
            raw_scores = self.score_fn(prompts, texts, response_ids).to(device).float()
            penalties = (
                self.penalty_fn(prompts, texts).to(device).float()
                if self.penalty_fn is not None
                else torch.zeros_like(raw_scores)
            )
            logprobs, _ = response_logprobs(
                self.unwrapped_policy,
                query_responses,
                attention_mask,
                context_length,
                p.temperature,
                self.banned,
            )
            ref_logprobs = self._reference_logprobs(query_responses, attention_mask, context_length)
            values = (
                response_values(self.value_model, query_responses, attention_mask, context_length)
                if self.uses_critic
                else torch.zeros_like(logprobs)
            )
        raw_scores = raw_scores.clone()
        self.unwrapped_policy.train()
        self.timings["scoring"] += time.perf_counter() - start
        return Rollout(
            query_responses=query_responses,
            attention_mask=attention_mask,
            context_length=context_length,
            response_mask=response_mask,
            has_eos=has_eos,
            logprobs=logprobs * response_mask,
            ref_logprobs=ref_logprobs * response_mask,
            values=values * response_mask,
            raw_scores=raw_scores,
            # The rule-based term comes after the clip: the clip bounds the reward model's
            # outliers, and a penalty inside it vanished wherever the reward model's score was
            # already near -clip (SmolLM2's answers scored -5 ± 3 normalised units).
            scores=self._normalise(raw_scores, has_eos) - penalties,
            penalties=penalties,
        )

    def update(self, rollout: Rollout) -> dict[str, float]:
        p = self.params
        # 3. Reward: score at the last real token minus β·KL per token.
        mask = rollout.response_mask
        rewards, kl = per_token_rewards(
            rollout.scores, rollout.logprobs, rollout.ref_logprobs, mask, self.kl_controller.value
        )
        # 4. Advantages: GAE on the critic's values, or the leave-one-out baseline of each
        # prompt's group; whitened over the whole (multi-process) batch.
        if self.uses_critic:
            advantages, returns = generalized_advantage_estimation(
                rewards, rollout.values, mask, p.gamma, p.lam
            )
        else:
            advantages = leave_one_out_advantages(rewards, mask, p.samples_per_prompt)
            returns = None
        advantages = masked_whiten(
            advantages, mask, lambda total: self.accelerator.reduce(total, "sum")
        )

        # 5. Optimise: a few epochs of minibatches over the fixed rollout.
        start = time.perf_counter()
        b_size = rollout.query_responses.shape[0]
        mb_size = max(1, b_size // p.num_minibatches)
        epoch_stats = defaultdict(list)
        # A LoRA base's frozen weights are cast to bf16 once for the whole update, not at every
        # minibatch's forward (autocast caches only the casts of weights that require grad).
        with frozen_weights_cast_once(self.unwrapped_policy, bf16=self.precision == "bf16"):
            for _ in range(p.ppo_epochs):
                for mb_index in torch.randperm(b_size).split(mb_size):
                    mb_stats = self._minibatch_step(rollout, mb_index, advantages, returns)
                    for key, value in mb_stats.items():
                        epoch_stats[key].append(value)
        self.timings["optimisation"] += time.perf_counter() - start

        sequence_kl = kl.sum(-1)
        stats = {
            "ppo/reward": rollout.raw_scores.mean().item(),
            "ppo/score": rollout.scores.mean().item(),
            "ppo/judge_penalty": rollout.penalties.mean().item(),
            "ppo/kl": sequence_kl.mean().item(),
            "ppo/non_score_reward": (-self.kl_controller.value * sequence_kl).mean().item(),
            "ppo/response_length": mask.float().sum(-1).mean().item(),
            "ppo/eos_rate": rollout.has_eos.float().mean().item(),
            "ppo/advantage_mean": masked_mean(advantages, mask).item(),
            **{key: sum(values) / len(values) for key, values in epoch_stats.items()},
        }
        if self.uses_critic:
            stats["ppo/return_mean"] = masked_mean(returns, mask).item()
            stats["ppo/explained_variance"] = explained_variance(rollout.values, returns, mask)
        stats = mean_across_processes(self.accelerator, stats)
        stats["ppo/kl_coef"] = self.kl_controller.value
        episodes = b_size * self.accelerator.num_processes
        stats["ppo/episodes"] = float(episodes)
        self.kl_controller.update(stats["ppo/kl"], episodes)
        if not all(math.isfinite(v) for v in stats.values()):
            bad = sorted(k for k, v in stats.items() if not math.isfinite(v))
            raise NonFiniteLossError(f"non-finite PPO statistics: {bad}")
        return stats

    def _minibatch_step(
        self, rollout: Rollout, mb_index: torch.Tensor, advantages, returns
    ) -> dict[str, float]:
        p, ctx = self.params, rollout.context_length
        first, kept = unpadded_window(
            rollout.attention_mask[mb_index], rollout.response_mask[mb_index], ctx
        )
        mb_query_responses = rollout.query_responses[mb_index, first : ctx + kept]
        mb_attention = rollout.attention_mask[mb_index, first : ctx + kept]
        ctx -= first

        def mb(batch: torch.Tensor) -> torch.Tensor:  # (B, R) → this minibatch's (b, kept)
            return batch[mb_index, :kept]

        mb_mask = mb(rollout.response_mask)
        # Through the prepared wrapper: only its forward syncs DDP gradients and gathers shards.
        with autocast(self.precision, self.accelerator.device):
            new_logprobs, entropy, new_values = self.model(
                mb_query_responses, mb_attention, ctx, p.temperature, self.banned
            )
        policy_loss = clipped_policy_loss(
            new_logprobs, mb(rollout.logprobs), mb(advantages), mb_mask, p.clip_range
        )
        loss = policy_loss.loss
        if self.uses_critic:
            value_loss = clipped_value_loss(
                new_values, mb(rollout.values), mb(returns), mb_mask, p.clip_range_value
            )
            loss = loss + p.value_loss_coef * value_loss.loss
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"PPO loss became {loss.item()}")
        self.accelerator.backward(loss)
        stats = {
            "ppo/policy_loss": policy_loss.loss.item(),
            "ppo/approx_kl": policy_loss.approx_kl.item(),
            "ppo/clipfrac": policy_loss.clipfrac.item(),
            "ppo/entropy": masked_mean(entropy.detach(), mb_mask).item(),
            **self._clip_gradients(),
        }
        if self.uses_critic:
            stats["ppo/value_loss"] = value_loss.loss.item()
            stats["ppo/value_clipfrac"] = value_loss.clipfrac.item()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return stats

    def _clip_gradients(self) -> dict[str, float]:
        groups = {"ppo/policy_grad_norm": self._policy_params}
        if self.uses_critic:
            groups["ppo/value_grad_norm"] = self._value_params
        return clip_gradients(self.accelerator, groups, self.params.max_grad_norm)

    def step(self, prompts: Sequence[Sequence[dict]]) -> dict[str, float]:
        """One full PPO update: rollout, scoring, reference, value, optimisation."""
        rollout = self.collect_rollout(prompts)
        return self.update(rollout)
