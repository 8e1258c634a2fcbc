"""Train the reward model from the base policy with TRL's RewardTrainer."""

from __future__ import annotations

import copy
import logging

import pandas as pd
from transformers import AutoModelForSequenceClassification
from trl import RewardConfig, RewardTrainer

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.base import as_messages
from alignment_stages.models.config import RewardModelParams
from alignment_stages.models.lora import lora_config
from alignment_stages.models.training import (
    FiniteLossGuard,
    check_final_loss,
    common_arguments,
    detach_from_trainer,
    seed_everything,
)
from datasets import Dataset

logger = logging.getLogger(__name__)


def reward_model_from_policy(policy: ModelArtifact) -> ModelArtifact:
    """A one-label sequence classifier sharing the policy's backbone weights.

    `from_config(cfg, num_labels=1)` raises in transformers 5, so `num_labels` is set on a copy
    of the config. Only the new score head is freshly initialised.
    """
    base = policy.model.merge_and_unload() if policy.is_lora else policy.model
    config = copy.deepcopy(base.config)
    config.num_labels = 1
    config.pad_token_id = policy.tokenizer.pad_token_id
    config.architectures = None
    reward_model = AutoModelForSequenceClassification.from_config(config)
    missing, _unexpected = reward_model.load_state_dict(base.state_dict(), strict=False)
    head_only = all(key.startswith(("score.", "classifier.")) for key in missing)
    if not head_only:
        raise ValueError(f"reward model could not take the policy's backbone; missing {missing}")
    return ModelArtifact(
        model=reward_model, tokenizer=policy.tokenizer, kind="sequence_classification"
    )


def preference_dataset(pairs: pd.DataFrame) -> Dataset:
    """TRL's conversational preference format with an explicit prompt."""
    return Dataset.from_list(
        [
            {
                "prompt": as_messages(prompt),
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}],
            }
            for prompt, chosen, rejected in zip(
                pairs["prompt_messages"], pairs["chosen"], pairs["rejected"], strict=True
            )
        ]
    )


def train_reward_model(
    preference_train: pd.DataFrame,
    base_policy: ModelArtifact,
    params: RewardModelParams,
    callbacks: list | None = None,
) -> ModelArtifact:
    """Bradley-Terry reward training with TRL's RewardTrainer; `callbacks` are extra
    TrainerCallbacks (benchmarks/reward_throughput.py times the steps with one)."""
    seed_everything(params.seed)
    initial = reward_model_from_policy(base_policy)
    trainer = RewardTrainer(
        model=initial.model,
        args=RewardConfig(
            **common_arguments(
                params.training, params.seed, initial.model, run_name="reward_model"
            ),
            center_rewards_coefficient=params.center_rewards_coefficient,
        ),
        train_dataset=preference_dataset(preference_train),
        processing_class=initial.tokenizer,
        peft_config=lora_config(params.lora, "SEQ_CLS"),
        callbacks=[FiniteLossGuard("reward_model"), *(callbacks or [])],
    )
    result = trainer.train()
    check_final_loss("reward_model", result.training_loss)
    logger.info(
        "reward_model/train_loss=%.4f reward_model/steps=%d",
        result.training_loss,
        result.global_step,
    )
    model = detach_from_trainer(trainer).eval()
    return ModelArtifact(model=model, tokenizer=initial.tokenizer, kind="sequence_classification")
