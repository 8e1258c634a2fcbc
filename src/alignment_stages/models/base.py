"""Build the base policy: a pretrained checkpoint, or the tiny model trained on `sft_examples`."""

from __future__ import annotations

import logging
import random

import pandas as pd
import torch
from trl import SFTConfig, SFTTrainer

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.checkpoints import load_checkpoint
from alignment_stages.models.config import BaseModelParams, SFTParams
from alignment_stages.models.lora import lora_config
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer
from alignment_stages.models.training import (
    FiniteLossGuard,
    check_final_loss,
    common_arguments,
    detach_from_trainer,
    seed_everything,
)
from datasets import Dataset

logger = logging.getLogger(__name__)


def as_messages(messages) -> list[dict[str, str]]:
    """Parquet gives arrays of dicts; the trainers and chat templates want plain lists."""
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def sft_dataset(sft_examples: pd.DataFrame, rejected_share: float, seed: int) -> Dataset:
    """Prompt-completion conversations. A seeded `rejected_share` of the examples is answered
    with the rejected response, so the base model learns both behaviours ("chaotic")."""
    rng = random.Random(seed)
    rows = []
    for prompt, chosen, rejected in zip(
        sft_examples["prompt_messages"],
        sft_examples["chosen"],
        sft_examples["rejected"],
        strict=True,
    ):
        response = rejected if rng.random() < rejected_share else chosen
        rows.append(
            {
                "prompt": as_messages(prompt),
                "completion": [{"role": "assistant", "content": response}],
            }
        )
    return Dataset.from_list(rows)


def curated_texts(sft_examples: pd.DataFrame):
    for prompt, chosen, rejected in zip(
        sft_examples["prompt_messages"],
        sft_examples["chosen"],
        sft_examples["rejected"],
        strict=True,
    ):
        yield from (m["content"] for m in prompt)
        yield chosen
        yield rejected


class ModelLossSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer, with the loss taken from the model's own logits where Triton is absent.

    TRL 1.16 computes the SFT loss through a fused LM head (`trl.kernels.ChunkedLogProbFunction`)
    that never holds the (tokens, vocabulary) logits at once. That saves memory on a GPU. Without
    Triton (a CPU), it scores every position, prompt included, and folds each vocabulary tile in
    fp32 torch ops for the entropy and top-1 metrics, forward and backward. On SmolLM2-135M
    (8 × ~88 tokens, bf16, 2 threads) that took 1.36 s of a 2.85 s step; the model's own loss,
    the same summed completion NLL over `num_items_in_batch`, takes the LM head's product and
    one log-softmax. Entropy and token accuracy are logged as TRL logs them, over the
    completion tokens, from the logits the loss already built.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.accelerator.device.type in ("cuda", "xpu"):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        outputs = model(**inputs, use_cache=False, num_items_in_batch=num_items_in_batch)
        loss = outputs.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer.compute_loss: DDP averages
        with torch.no_grad():
            targets = inputs["labels"][:, 1:]
            scored = targets != -100
            logits = outputs.logits[:, :-1][scored].float()
            log_probs = torch.log_softmax(logits, dim=-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
            correct = logits.argmax(-1) == targets[scored]
            gather = self.accelerator.gather_for_metrics
            valid = gather(scored.sum()).sum()
            if valid > 0:
                metrics = self._metrics[mode]
                metrics["entropy"].append((gather(entropy.sum()).sum() / valid).item())
                metrics["mean_token_accuracy"].append((gather(correct.sum()).sum() / valid).item())
            if mode == "train":
                self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return (loss, outputs) if return_outputs else loss


def run_sft(policy: ModelArtifact, dataset: Dataset, params: SFTParams, seed: int) -> ModelArtifact:
    """TRL SFTTrainer; the loss is on the completion only (TRL's default for this format)."""
    seed_everything(seed)
    trainer = ModelLossSFTTrainer(
        model=policy.model,
        args=SFTConfig(**common_arguments(params, seed, policy.model, run_name="base_model/sft")),
        train_dataset=dataset,
        processing_class=policy.tokenizer,
        callbacks=[FiniteLossGuard("base_model SFT")],
        peft_config=lora_config(params.lora, "CAUSAL_LM"),
    )
    result = trainer.train()
    check_final_loss("base_model SFT", result.training_loss)
    logger.info(
        "base_model/sft_loss=%.4f base_model/sft_steps=%d", result.training_loss, result.global_step
    )
    model = detach_from_trainer(trainer)
    if hasattr(model, "peft_config"):
        model = model.merge_and_unload()
    return ModelArtifact(model=model, tokenizer=policy.tokenizer)


def load_pretrained_policy(params: BaseModelParams) -> ModelArtifact:
    """A local directory, a hub id or a GGUF file (`models.checkpoints`), with its own pad.

    A pad equal to EOS would get every EOS inside a prompt (multi-turn chat templates close each
    turn with it) masked as padding, so pad gets a token of its own. The sampler never draws it
    (`ppo.rollout.unsampled_token_ids`), so it is never trained on or scored.
    """
    policy = load_checkpoint(params.pretrained, params.trust_remote_code)
    model, tokenizer = policy.model, policy.tokenizer
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    return ModelArtifact(model=model, tokenizer=tokenizer)


def build_base_policy(sft_examples: pd.DataFrame, params: BaseModelParams) -> ModelArtifact:
    seed_everything(params.seed)
    if params.pretrained:
        policy = load_pretrained_policy(params)
    else:
        tokenizer = train_tokenizer(curated_texts(sft_examples), params.tiny.vocab_size)
        policy = ModelArtifact(
            model=build_tiny_causal_lm(tokenizer, params.tiny), tokenizer=tokenizer
        )
    logger.info("base_model/parameters=%d", sum(p.numel() for p in policy.model.parameters()))
    if params.sft.enabled:
        dataset = sft_dataset(sft_examples, params.sft.rejected_share, params.seed)
        policy = run_sft(policy, dataset, params.sft, params.seed)
    policy.model.eval()
    return policy
