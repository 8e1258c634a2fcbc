"""Build the base policy: a pretrained checkpoint, or the tiny model trained on `sft_examples`."""

from __future__ import annotations

import logging
import random

import pandas as pd
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
    logits_head_off_gpu,
    seed_everything,
)
from datasets import Dataset, concatenate_datasets

logger = logging.getLogger(__name__)


def as_messages(messages) -> list[dict[str, str]]:
    """Parquet gives arrays of dicts; the trainers and chat templates want plain lists."""
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def sft_dataset(
    sft_examples: pd.DataFrame,
    rejected_share: float,
    seed: int,
    safe_answer_max_score: float | None = None,
) -> Dataset:
    """Prompt-completion conversations. A seeded `rejected_share` of the examples is answered
    with the rejected response, so the base model learns both behaviours ("chaotic").

    With `safe_answer_max_score`, an example on an unsafe prompt is kept only where its chosen
    answer's score (people's harm score, or "objective achieved") is at most that: a published
    pair's chosen answer is only the less harmful of two, and on 151 of the 187 unsafe SFT
    examples of the smollm2 run it still complied, so the base was taught to comply, not to
    refuse (docs/performance.md, run R)."""
    if safe_answer_max_score is not None:
        scores = pd.to_numeric(sft_examples["chosen_score"], errors="coerce")
        unsafe = sft_examples["category"].eq("unsafe")
        harmful_chosen = unsafe & ~(scores <= safe_answer_max_score)
        logger.info("base_model/sft dropped %d of %d unsafe examples whose chosen answer scores "
                    "above %s", int(harmful_chosen.sum()), int(unsafe.sum()),
                    safe_answer_max_score)  # fmt: skip
        sft_examples = sft_examples[~harmful_chosen]
    rng = random.Random(seed)
    rows = []
    for prompt, chosen, rejected in zip(
        sft_examples["prompt_messages"],
        sft_examples["chosen"],
        sft_examples["rejected"],
        strict=True,
    ):
        # A published answer with no rejected one beside it (AlpacaEval's) is always the answer.
        draw = rng.random()
        response = rejected if isinstance(rejected, str) and draw < rejected_share else chosen
        rows.append(sft_conversation(prompt, response))
    return Dataset.from_list(rows)


def sft_conversation(prompt, response: str) -> dict:
    """One prompt-completion row, as TRL's SFTTrainer reads it."""
    return {
        "prompt": as_messages(prompt),
        "completion": [{"role": "assistant", "content": response}],
    }


def curated_texts(sft_examples: pd.DataFrame):
    for prompt, chosen, rejected in zip(
        sft_examples["prompt_messages"],
        sft_examples["chosen"],
        sft_examples["rejected"],
        strict=True,
    ):
        yield from (m["content"] for m in prompt)
        yield chosen
        if isinstance(rejected, str):
            yield rejected


def run_sft(policy: ModelArtifact, dataset: Dataset, params: SFTParams, seed: int) -> ModelArtifact:
    """TRL SFTTrainer; the loss is on the completion only (TRL's default for this format)."""
    seed_everything(seed)
    trainer = SFTTrainer(
        model=policy.model,
        args=SFTConfig(**common_arguments(params, seed, policy.model, run_name="base_model/sft")),
        train_dataset=dataset,
        processing_class=policy.tokenizer,
        callbacks=[FiniteLossGuard("base_model SFT")],
        peft_config=lora_config(params.lora, "CAUSAL_LM"),
    )
    # TRL's fused LM head without Triton cost 1.36 s of a 2.85 s SmolLM2 step; the loss and
    # metrics from the model's logits are the same (models.training.fused_head_from_logits).
    logits_head_off_gpu(trainer.model)
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
    policy = load_checkpoint(params.pretrained, params.trust_remote_code, params.gguf_cache)
    model, tokenizer = policy.model, policy.tokenizer
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    return ModelArtifact(model=model, tokenizer=tokenizer)


def base_checkpoint(sft_examples: pd.DataFrame, params: BaseModelParams) -> ModelArtifact:
    """The policy before SFT: the pretrained checkpoint, or the tiny model and its tokenizer."""
    seed_everything(params.seed)
    if params.pretrained:
        policy = load_pretrained_policy(params)
    else:
        tokenizer = train_tokenizer(curated_texts(sft_examples), params.tiny.vocab_size)
        policy = ModelArtifact(
            model=build_tiny_causal_lm(tokenizer, params.tiny), tokenizer=tokenizer
        )
    logger.info("base_model/parameters=%d", sum(p.numel() for p in policy.model.parameters()))
    return policy


def train_base_policy(
    policy: ModelArtifact,
    sft_examples: pd.DataFrame,
    params: BaseModelParams,
    own_answers: pd.DataFrame | None = None,
) -> ModelArtifact:
    """SFT (when enabled) on `sft_examples`' mix, and on `own_answers` (prompt_messages, answer:
    the checkpoint's own words, `stages.base_model`) beside it."""
    if params.sft.enabled:
        dataset = sft_dataset(sft_examples, params.sft.rejected_share, params.seed,
                              params.sft.safe_answer_max_score)  # fmt: skip
        if own_answers is not None and len(own_answers):
            dataset = concatenate_datasets([dataset, own_answer_dataset(own_answers)])
        policy = run_sft(policy, dataset, params.sft, params.seed)
    policy.model.eval()
    return policy


def own_answer_dataset(own_answers: pd.DataFrame) -> Dataset:
    return Dataset.from_list(
        [
            sft_conversation(prompt, answer)
            for prompt, answer in zip(
                own_answers["prompt_messages"], own_answers["answer"], strict=True
            )
        ]
    )


def build_base_policy(sft_examples: pd.DataFrame, params: BaseModelParams) -> ModelArtifact:
    return train_base_policy(base_checkpoint(sft_examples, params), sft_examples, params)
