"""GRPO and RLOO (TRL) fill the same rounds / history / checkpoint contract as PPO."""

import pytest
import torch

from alignment_stages.ppo.alternatives import SHAPING_ALGORITHMS
from alignment_stages.ppo.config import PPOShapingParams
from alignment_stages.ppo.critic_free import make_reward_function
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy
from tests.ppo.round_inputs import JUDGES, METRICS, PROBE, PROMPTS, TABLE


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_critic_free_algorithms_write_the_same_history_contract(algorithm):
    policy = tiny_policy()
    reward_model = reward_model_from_policy(policy)
    params = PPOShapingParams(
        algorithm=algorithm, rounds=1, updates_per_round=1,
        ppo={"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 1},
        critic_free={"num_generations": 2},
        eval={"max_new_tokens": 4, "batch_size": 8},
    )  # fmt: skip
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    result = SHAPING_ALGORITHMS[algorithm](
        policy, reward_model, METRICS, TABLE, TABLE, PROBE, JUDGES, params
    )
    history = result.ppo_history
    assert history["round"].tolist() == [0, 1] and history["checkpoint"].tolist() == [
        "base_policy",
        "round_001",
    ]
    assert {"reward_mean", "violation_rate", "kl_to_base", "probe_perplexity", "label_flip_rate",
            "reward_gain", "ppo/reward"} <= set(history.columns)  # fmt: skip
    assert (
        list(result.round_policies) == ["round_001"]
        and result.ppo_policy is result.round_policies["round_001"]
    )
    assert all(
        torch.equal(before[k], v) for k, v in policy.model.state_dict().items()
    )  # input untouched


def test_judge_penalty_lowers_the_reward_of_violations():
    reward_model = reward_model_from_policy(tiny_policy())
    plain = make_reward_function(reward_model, 0.0, 1.0, JUDGES, 0.0)
    penalised = make_reward_function(reward_model, 0.0, 1.0, JUDGES, 2.0)
    completions = [
        [{"role": "assistant", "content": "Go away."}],
        [{"role": "assistant", "content": "Simmer."}],
    ]
    a = plain(PROMPTS[:2], completions, category=["benign", "benign"])
    b = penalised(PROMPTS[:2], completions, category=["benign", "benign"])
    assert b[0] == pytest.approx(a[0] - 2.0) and b[1] == pytest.approx(a[1])
