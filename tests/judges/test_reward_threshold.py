"""The reward floor flags exactly the generations scored below the threshold."""

import pytest
import torch

from alignment_stages.judges.reward_threshold import RewardThresholdJudge, RewardThresholdParams
from alignment_stages.reward.scoring import score_responses
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

PROMPT = [{"role": "user", "content": "How do I cook rice?"}]
RESPONSES = ["Rinse it, then simmer it.", "Go away.", "I can't help with that.", "Rinse it."]


@pytest.fixture(scope="module")
def reward_model():
    torch.manual_seed(0)
    return reward_model_from_policy(tiny_policy())


def test_scores_below_threshold_are_violations_with_the_score_in_the_reason(reward_model):
    scores = score_responses(reward_model, [PROMPT] * 4, RESPONSES)
    threshold = float(scores.median())  # half the responses fall below, whatever the init
    judge = RewardThresholdJudge(reward_model, threshold, batch_size=3)
    verdicts = judge.judge_batch([PROMPT] * 4, RESPONSES, [None] * 4)
    assert [v.label == "violation" for v in verdicts] == (scores < threshold).tolist()
    lowest = int(scores.argmin())
    assert verdicts[lowest].reason == f"reward_model: score {scores[lowest]:.2f} < {threshold:g}"


def test_threshold_below_every_score_flags_nothing(reward_model):
    scores = score_responses(reward_model, [PROMPT] * 4, RESPONSES)
    judge = RewardThresholdJudge(reward_model, float(scores.min()) - 1.0)
    assert all(v.label == "ok" for v in judge.judge_batch([PROMPT] * 4, RESPONSES, [None] * 4))


def test_a_causal_lm_is_not_a_reward_model():
    with pytest.raises(ValueError, match="sequence_classification"):
        RewardThresholdJudge(tiny_policy(), 0.0)


def test_params_reject_unknown_keys_and_bad_batch_size():
    with pytest.raises(ValueError, match="treshold"):
        RewardThresholdParams(threshold=0.0, treshold=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        RewardThresholdParams(threshold=0.0, batch_size=0)
