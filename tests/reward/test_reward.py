"""Reward model construction, scoring format, metrics and the accuracy floor."""

import pandas as pd
import pytest
import torch

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.reward.evaluate import (
    RewardModelQualityError,
    check_accuracy_floor,
    evaluate_reward_model,
)
from alignment_stages.reward.scoring import conversation_ids, score_responses
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]


def test_reward_model_takes_the_policy_backbone_and_one_label():
    policy = tiny_policy()
    reward_model = reward_model_from_policy(policy)
    assert reward_model.model.config.num_labels == 1
    assert reward_model.kind == "sequence_classification"
    torch.testing.assert_close(
        reward_model.model.model.embed_tokens.weight, policy.model.model.embed_tokens.weight
    )


def test_scored_sequence_ends_with_eos_like_reward_training():
    tokenizer = tiny_policy().tokenizer
    ids = conversation_ids(tokenizer, PROMPT, "Rinse it.")
    assert ids[-1] == tokenizer.eos_token_id and tokenizer.pad_token_id not in ids


def test_score_is_read_at_the_last_real_token_whatever_the_batch_padding():
    reward_model = reward_model_from_policy(tiny_policy())
    responses = ["Rinse it.", "Rinse it, then simmer it and go away and rinse it again."]
    together = score_responses(reward_model, [PROMPT] * 2, responses, batch_size=2)
    alone = torch.cat(
        [score_responses(reward_model, [PROMPT], [r], batch_size=1) for r in responses]
    )
    torch.testing.assert_close(together, alone)


def test_scores_come_back_in_the_callers_order_when_batches_are_grouped_by_length():
    """score_responses batches conversations of similar length together; the scores must still
    line up with the responses as given."""
    reward_model = reward_model_from_policy(tiny_policy())
    responses = ["Rinse it, then simmer it and go away and rinse it again, twice.", "Rinse.",
                 "Rinse it and simmer it.", "Go.", "Simmer it for ten minutes, then rinse it."]  # fmt: skip
    grouped = score_responses(reward_model, [PROMPT] * 5, responses, batch_size=2)
    alone = torch.cat([score_responses(reward_model, [PROMPT], [r]) for r in responses])
    torch.testing.assert_close(grouped, alone)
    assert len(set(alone.tolist())) == 5  # distinct scores: a permutation would show


class _LengthReward:
    """A stand-in reward model whose score is the sequence length: longer answers win."""

    config = type("C", (), {"num_labels": 1})()
    training = False

    def parameters(self):
        yield torch.zeros(1)

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def __call__(self, input_ids, attention_mask):
        return type("O", (), {"logits": attention_mask.sum(-1, keepdim=True).float()})()


def test_metrics_cover_accuracy_by_group_margins_and_chosen_statistics():
    val = pd.DataFrame(
        {
            "prompt_messages": [PROMPT] * 4,
            "chosen": [
                "A long helpful answer here.",
                "Another long helpful answer.",
                "No.",
                "Fine answer here.",
            ],
            "rejected": ["No.", "Nope.", "A much longer rejected answer.", "Go."],
            "category": ["benign", "benign", "unsafe", "unsafe"],
            "source": ["a.jsonl", "b.jsonl", "a.jsonl", "b.jsonl"],
        }
    )
    metrics = evaluate_reward_model(
        ModelArtifact(model=_LengthReward(), tokenizer=tiny_policy().tokenizer), val, 2, 64
    )
    assert metrics["accuracy"] == 0.75
    assert metrics["accuracy_by_category"] == {
        "benign": {"accuracy": 1.0, "pairs": 2}, "unsafe": {"accuracy": 0.5, "pairs": 2},
    }  # fmt: skip
    assert set(metrics["accuracy_by_source"]) == {"a.jsonl", "b.jsonl"}
    assert metrics["margin"]["quantiles"]["p05"] < 0 < metrics["margin"]["mean"]
    assert sum(metrics["margin"]["histogram"]["counts"]) == 4
    assert metrics["score_chosen"]["std"] > 0


def test_accuracy_floor_error_names_the_floor_and_weakest_category():
    metrics = {"accuracy": 0.6, "pairs": 50,
               "accuracy_by_category": {"benign": {"accuracy": 0.9}, "unsafe": {"accuracy": 0.3}}}  # fmt: skip
    with pytest.raises(
        RewardModelQualityError, match=r"0\.600 .*accuracy_floor=0\.8 .*unsafe 0\.30"
    ):
        check_accuracy_floor(metrics, 0.8)
    check_accuracy_floor(metrics, 0.6)


def test_lora_reward_model_trains_its_head_and_round_trips(tmp_path):
    from alignment_stages.models.artifacts import load_artifact, save_artifact
    from alignment_stages.models.config import RewardModelParams
    from alignment_stages.reward.train import train_reward_model

    pairs = pd.DataFrame(
        {
            "prompt_messages": [PROMPT] * 16,
            "chosen": ["Rinse it, then simmer it."] * 16,
            "rejected": ["Go away."] * 16,
        }
    )
    params = RewardModelParams(
        training={"epochs": 1, "batch_size": 8, "max_length": 64, "logging_steps": 1},
        lora={"enabled": True, "r": 2, "alpha": 4, "target_modules": ["q_proj", "v_proj"]},
    )
    trained = train_reward_model(pairs, tiny_policy(), params)
    assert trained.is_lora
    save_artifact(trained, tmp_path / "rm")
    loaded = load_artifact(tmp_path / "rm", "sequence_classification")
    scores = [score_responses(a, [PROMPT], ["Go away."]) for a in (trained, loaded)]
    torch.testing.assert_close(scores[0], scores[1])
