"""The SmolLM2 tokenizer (pad == eos in the checkpoint) through every stage's formatting: its own
chat template in SFT, the reward model, PPO and DPO; no EOS inside a prompt masked."""

from __future__ import annotations

import copy

import pytest
from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import TinyModelParams, TrainingParams
from alignment_stages.models.sampling import encode_prompts
from alignment_stages.models.tiny import build_tiny_causal_lm
from alignment_stages.models.training import common_arguments
from alignment_stages.reward.scoring import conversation_ids
from alignment_stages.reward.train import preference_dataset, reward_model_from_policy
from tests.models.smollm2 import SMOLLM2_INSTALLED, smollm2_policy

pytestmark = pytest.mark.skipif(not SMOLLM2_INSTALLED, reason="smollm2 extra not installed")

MULTI_TURN = [
    {"role": "user", "content": "Name a fruit."},
    {"role": "assistant", "content": "An apple."},
    {"role": "user", "content": "And a vegetable?"},
]
CHOSEN, REJECTED = "A carrot.", "Figure it out yourself."


@pytest.fixture(scope="module")
def small_policy() -> ModelArtifact:
    """A tiny Llama on the real tokenizer: the trainers' formatting, without 135M parameters."""
    tokenizer = smollm2_policy().tokenizer
    size = TinyModelParams(vocab_size=300, hidden_size=16, intermediate_size=32,
                           num_hidden_layers=1, num_attention_heads=2)  # fmt: skip
    return ModelArtifact(build_tiny_causal_lm(tokenizer, size), tokenizer)


def _arguments() -> dict:
    return common_arguments(TrainingParams(epochs=1, batch_size=2, max_length=512), seed=0)


def _pairs():
    import pandas as pd

    return pd.DataFrame({"prompt_messages": [MULTI_TURN], "chosen": [CHOSEN],
                         "rejected": [REJECTED]})  # fmt: skip


def test_eos_inside_a_multi_turn_prompt_is_never_masked_as_padding():
    tokenizer = smollm2_policy().tokenizer
    template = tokenizer.apply_chat_template(MULTI_TURN, add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"]  # fmt: skip
    assert template.count(tokenizer.eos_token_id) >= 3  # each turn closes with <|im_end|>
    input_ids, mask = encode_prompts(tokenizer, [MULTI_TURN, MULTI_TURN[:1]], "cpu")
    real = input_ids[0][mask[0].bool()].tolist()
    assert real == template  # every in-prompt EOS is attended to
    assert tokenizer.pad_token_id not in real and tokenizer.pad_token_id != tokenizer.eos_token_id
    reward = reward_model_from_policy(smollm2_policy())
    assert reward.model.config.pad_token_id == tokenizer.pad_token_id  # scored at the real end


def test_the_reward_model_scores_exactly_the_format_it_was_trained_on(small_policy):
    reward = reward_model_from_policy(small_policy)
    trainer = RewardTrainer(model=reward.model, args=RewardConfig(**_arguments()),
                            train_dataset=preference_dataset(_pairs()),
                            processing_class=reward.tokenizer)  # fmt: skip
    row = trainer.train_dataset[0]
    tokenizer = small_policy.tokenizer
    assert row["chosen_ids"] == conversation_ids(tokenizer, MULTI_TURN, CHOSEN)
    assert row["rejected_ids"] == conversation_ids(tokenizer, MULTI_TURN, REJECTED)
    assert tokenizer.decode(row["chosen_ids"]).startswith("<|im_start|>system")  # its own template


def test_dpo_and_ppo_see_the_prompt_in_the_same_template(small_policy):
    model = small_policy.model
    trainer = DPOTrainer(model=copy.deepcopy(model), ref_model=copy.deepcopy(model),
                         args=DPOConfig(**_arguments()), train_dataset=preference_dataset(_pairs()),
                         processing_class=small_policy.tokenizer)  # fmt: skip
    row = trainer.train_dataset[0]
    input_ids, mask = encode_prompts(small_policy.tokenizer, [MULTI_TURN], "cpu")
    assert row["prompt_ids"] == input_ids[0][mask[0].bool()].tolist()
    conversation = conversation_ids(small_policy.tokenizer, MULTI_TURN, CHOSEN)
    assert row["prompt_ids"] + row["chosen_ids"] == conversation


def test_sft_trains_on_the_checkpoints_own_template(small_policy):
    from alignment_stages.models.base import sft_dataset

    examples = _pairs()
    dataset = sft_dataset(examples, rejected_share=0.0, seed=0)
    trainer = SFTTrainer(model=copy.deepcopy(small_policy.model), args=SFTConfig(**_arguments()),
                         train_dataset=dataset, processing_class=small_policy.tokenizer)  # fmt: skip
    row = trainer.train_dataset[0]
    assert row["input_ids"] == conversation_ids(small_policy.tokenizer, MULTI_TURN, CHOSEN)
    assert small_policy.tokenizer.decode(row["input_ids"]).endswith(CHOSEN + "<|im_end|>\n")


def test_training_data_never_holds_the_added_pad(small_policy):
    tokenizer = small_policy.tokenizer
    for response in (CHOSEN, REJECTED):
        assert tokenizer.pad_token_id not in conversation_ids(tokenizer, MULTI_TURN, response)
