"""One PPO update, read top to bottom: 1 rollout, 2 score, 3 reward, 4 advantages, 5 optimise.

Runs through `accelerate`, so the same code runs on CPU, one GPU, or under
`accelerate launch` (DDP, DeepSpeed ZeRO, FSDP); policy and critic are prepared as one module
(`PolicyAndValue`), and statistics are reduced across processes.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType
from peft import get_peft_model

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import LoraParams
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.lora import lora_config
from alignment_stages.models.precision import autocast, resolve_precision
from alignment_stages.models.training import copy_sharing_frozen
from alignment_stages.ppo.advantages import (
    generalized_advantage_estimation,
    leave_one_out_advantages,
    masked_mean,
    per_token_rewards,
)
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.kl_control import build_kl_controller
from alignment_stages.ppo.losses import clipped_policy_loss, clipped_value_loss
from alignment_stages.ppo.policy_and_value import PolicyAndValue
from alignment_stages.ppo.rollout import (
    Rollout,
    TokenValueModel,
    encode_prompts,
    eos_token_ids,
    frozen_weights_cast_once,
    response_values,
    sample_responses,
    unpadded_window,
    unsampled_token_ids,
)

logger = logging.getLogger(__name__)

# score_fn(prompts, response_texts, response_token_ids) -> (B,) raw scores
ScoreFn = Callable[[Sequence[Sequence[dict]], list[str], list[list[int]]], torch.Tensor]
# penalty_fn(prompts, response_texts) -> (B,) non-negative penalties in normalised units
PenaltyFn = Callable[[Sequence[Sequence[dict]], list[str]], torch.Tensor]


class NonFiniteLossError(RuntimeError):
    """A PPO loss or statistic became NaN or infinite."""


@dataclass(frozen=True)
class ScoreNormalisation:
    """Reward-model score statistics on chosen answers (reward_model_metrics.score_chosen)."""

    mean: float = 0.0
    std: float = 1.0


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


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 − Var(R − V) / Var(R) over real tokens: 1 is a perfect critic, ≤ 0 no better than a
    constant (as CleanRL logs it)."""
    variance = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    residual = returns - values
    residual_variance = masked_mean((residual - masked_mean(residual, mask)) ** 2, mask)
    return float("nan") if variance == 0 else (1.0 - residual_variance / variance).item()


def ppo_accelerator() -> Accelerator:
    """An Accelerator without mixed precision: PPO applies `precision` itself, around the
    matrix products only (models.precision).

    accelerate keeps one AcceleratorState per process. A TRL trainer that ran with bf16 earlier in
    the same process (the reward model, in a `kedro run`) leaves it at mixed_precision 'bf16', and
    a plain `Accelerator()` inherits that: every forward, the critic's and the fp32 log-probs
    included, then ran under bf16 autocast whatever `ppo.precision` said. So the accelerator part
    is reset, as transformers' TrainingArguments does before each trainer; the process group
    (PartialState) is kept.
    """
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision", "no") != "no":
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision="no")


class PPOTrainer:
    def __init__(
        self,
        policy: ModelArtifact,
        critic_init: ModelArtifact,
        score_fn: ScoreFn,
        params: PPOParams,
        lora: LoraParams | None = None,
        normalisation: ScoreNormalisation = ScoreNormalisation(),
        accelerator: Accelerator | None = None,
        penalty_fn: PenaltyFn | None = None,
    ):
        self.params, self.score_fn, self.normalisation = params, score_fn, normalisation
        self.penalty_fn = penalty_fn
        self.tokenizer = policy.tokenizer
        self.banned = unsampled_token_ids(
            self.tokenizer, eos_token_ids(policy.model, self.tokenizer)
        )
        self.accelerator = accelerator or ppo_accelerator()
        if self.accelerator.mixed_precision != "no":
            raise ValueError(
                f"the accelerator's mixed_precision '{self.accelerator.mixed_precision}' would "
                "autocast every forward, the fp32 log-probs included; set ppo.precision instead"
            )
        # The policy trains on a copy: the input artifact (the base policy) stays untouched for
        # later stages. With LoRA the reference is the same weights with the adapter disabled;
        # without it, the untouched input model is the reference, so there is no second copy.
        # LoRA freezes the base, so its copy shares the input's weights instead of copying them.
        peft = lora_config(lora, "CAUSAL_LM") if lora else None
        trainable = (
            copy_sharing_frozen(policy.model, share_all=True)
            if peft
            else copy.deepcopy(policy.model)
        )
        self.reference = None if peft else policy.model.eval()
        trainable = get_peft_model(trainable, peft) if peft else trainable
        # rloo's baseline is the other samples of the same prompt: no critic is built, which
        # saves a model copy, its Adam state and about 60% of the optimisation FLOPs.
        self.uses_critic = params.advantage_estimator == "gae"
        critic = copy.deepcopy(critic_init.model) if self.uses_critic else None
        if hasattr(critic, "peft_config"):
            critic = critic.merge_and_unload()  # the critic's own copy; the reward model stays
        attention = params.attn_implementation
        if attention == "auto" and not torch.cuda.is_available():
            attention = "eager"  # on CPU, for short sequences, ~10% faster per update than SDPA
        if attention != "auto":
            for model in (trainable, critic):
                if model is not None:
                    model.set_attn_implementation(attention)
        value_model = (
            TokenValueModel(critic, normalisation.mean, normalisation.std) if critic else None
        )
        _refuse_unsynchronised_processes(self.accelerator)
        # One module for both, so one `prepare` covers them: DeepSpeed and FSDP2 take one model.
        wrapper = PolicyAndValue(trainable, value_model)
        disable_dropout(wrapper)
        wrapper.train()
        optimizer = torch.optim.Adam(
            [p for p in wrapper.parameters() if p.requires_grad],
            lr=params.learning_rate,
            eps=params.adam_eps,
            fused=True,  # one kernel for all parameters: ~4x faster steps than the per-tensor loop
        )
        self._configure_deepspeed(max(1, params.rollout_batch_size // params.num_minibatches))
        self.model, self.optimizer = self.accelerator.prepare(wrapper, optimizer)
        # Read back after `prepare`: FSDP2 replaces each parameter with a sharded DTensor.
        prepared = self.accelerator.unwrap_model(self.model)
        self._policy_params = [p for p in prepared.policy.parameters() if p.requires_grad]
        self._value_params = (
            [p for p in prepared.value_model.parameters() if p.requires_grad]
            if self.uses_critic
            else []
        )
        if self.reference is not None:
            self.reference.to(self.accelerator.device)
        self.kl_controller = build_kl_controller(
            params.kl_control, params.kl_coef, params.kl_target, params.kl_horizon
        )
        episodes = params.rollout_batch_size * self.accelerator.num_processes
        if params.kl_control == "adaptive" and episodes >= 5 * params.kl_horizon:
            # the parameters check one process; this is every process's batch together
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

    def _configure_deepspeed(self, micro_batch_size: int) -> None:
        """Fill the DeepSpeed config's `auto` entries that accelerate takes from a dataloader,
        which PPO does not have (accelerate's DeepSpeed guide: "auto" values are filled in
        `prepare`, or must be set by hand).

        DeepSpeed clips inside `engine.step`, which `accelerator.backward` runs, with one norm
        over every gradient it holds: the policy and the critic can no longer be clipped each on
        its own (see `_clip_gradients`).
        """
        plugin = self.accelerator.state.deepspeed_plugin
        if plugin is None:
            return
        config = plugin.deepspeed_config
        for key, value in (
            ("train_micro_batch_size_per_gpu", micro_batch_size),
            ("gradient_clipping", self.params.max_grad_norm),
        ):
            if config.get(key, "auto") == "auto":
                config[key] = value
        if self.uses_critic:
            logger.warning(
                "DeepSpeed clips policy and critic with one joint gradient norm "
                "(gradient_clipping=%s); a large critic can starve a LoRA policy's updates",
                config["gradient_clipping"],
            )

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
        if self.reference is not None:
            return response_logprobs(
                self.reference,
                query_responses,
                attention_mask,
                context_length,
                self.params.temperature,
                self.banned,
            )[0]
        with self.unwrapped_policy.disable_adapter():
            return response_logprobs(
                self.unwrapped_policy,
                query_responses,
                attention_mask,
                context_length,
                self.params.temperature,
                self.banned,
            )[0]

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

    def _global_whiten(self, values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Whiten advantages with statistics reduced over every process's batch."""
        mask = mask.float()
        total, count = self.accelerator.reduce(
            torch.stack([(values * mask).sum(), mask.sum()]), "sum"
        )
        mean = total / count.clamp(min=1)
        square = self.accelerator.reduce(((values - mean) ** 2 * mask).sum(), "sum")
        return (values - mean) * torch.rsqrt(square / count.clamp(min=1) + 1e-8) * mask

    def _mean_across_processes(self, stats: dict[str, float]) -> dict[str, float]:
        keys = sorted(stats)
        tensor = torch.tensor(
            [stats[k] for k in keys], device=self.accelerator.device, dtype=torch.float64
        )
        reduced = self.accelerator.reduce(tensor, "mean")
        return dict(zip(keys, reduced.tolist(), strict=True))

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
        advantages = self._global_whiten(advantages, mask)

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
        stats = self._mean_across_processes(stats)
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
        mb_mask = rollout.response_mask[mb_index, :kept]
        ctx -= first
        # Through the prepared wrapper: only its forward syncs DDP gradients and gathers shards.
        with autocast(self.precision, self.accelerator.device):
            new_logprobs, entropy, new_values = self.model(
                mb_query_responses, mb_attention, ctx, p.temperature, self.banned
            )
        policy_loss = clipped_policy_loss(
            new_logprobs,
            rollout.logprobs[mb_index, :kept],
            advantages[mb_index, :kept],
            mb_mask,
            p.clip_range,
        )
        loss = policy_loss.loss
        if self.uses_critic:
            value_loss = clipped_value_loss(
                new_values,
                rollout.values[mb_index, :kept],
                returns[mb_index, :kept],
                mb_mask,
                p.clip_range_value,
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
        """Policy and critic are clipped each on its own, as with OpenRLHF's separate actor and
        critic optimisers. One joint norm is dominated by the larger model: a fully trained 134M
        critic beside a LoRA policy scaled the adapter's gradients below Adam's eps, and 12
        SmolLM2 updates left the policy's KL to its reference at 0.0000.

        Under DeepSpeed, `accelerator.backward` has already stepped: the engine clipped with one
        joint norm (`gradient_clipping`), and accelerate's `clip_grad_norm_` only reads it back.
        """
        max_norm = self.params.max_grad_norm
        if self.accelerator.distributed_type == DistributedType.DEEPSPEED:
            norm = self.accelerator.clip_grad_norm_(self._policy_params, max_norm)
            return {} if norm is None else {"ppo/grad_norm": _scalar(norm)}
        groups = {"ppo/policy_grad_norm": self._policy_params}
        if self.uses_critic:
            groups["ppo/value_grad_norm"] = self._value_params
        return {
            key: _scalar(self.accelerator.clip_grad_norm_(group, max_norm))
            for key, group in groups.items()
        }

    def step(self, prompts: Sequence[Sequence[dict]]) -> dict[str, float]:
        """One full PPO update: rollout, scoring, reference, value, optimisation."""
        rollout = self.collect_rollout(prompts)
        return self.update(rollout)


def _scalar(norm) -> float:
    """A gradient norm as a float: under FSDP2 it is a DTensor, whose `full_tensor` gathers it."""
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)


def _refuse_unsynchronised_processes(accelerator: Accelerator) -> None:
    """Stop a launch whose processes would each train alone. On a machine without CUDA,
    accelerate 1.15 turns an FSDP or DeepSpeed config into no distribution at all (seen with
    deploy/accelerate/fsdp.yaml: DistributedType.NO in both of two processes, and each rank's
    statistics its own), or counts every rank as rank 0 of 1; the main process's model would
    then silently be one rank's."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    alone = accelerator.num_processes > 1 and accelerator.distributed_type == DistributedType.NO
    if launched != accelerator.num_processes or alone:
        raise RuntimeError(
            f"{launched} processes were launched, but the accelerator runs "
            f"{accelerator.num_processes} with distributed type {accelerator.distributed_type}: "
            "each process would train alone. On CPU, DDP needs --multi_gpu, DeepSpeed an "
            "accelerator with InitProcessGroupKwargs(backend='gloo'), and FSDP a GPU "
            "(docs/deployment.md)"
        )
