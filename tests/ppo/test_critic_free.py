"""GRPO and RLOO (TRL) fill the same rounds / history / checkpoint contract as PPO."""

import pytest
import torch

from alignment_stages.ppo.critic_free import make_reward_function
from alignment_stages.reward.train import reward_model_from_policy
from alignment_stages.stages.ppo_shaping import SHAPING_ALGORITHMS, ShapingStageParams
from tests.models.tiny import tiny_policy
from tests.ppo.round_inputs import JUDGES, PROMPTS, shaping_inputs


@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_critic_free_algorithms_write_the_same_history_contract(algorithm):
    policy = tiny_policy()
    reward_model = reward_model_from_policy(policy)
    params = ShapingStageParams(
        algorithm=algorithm, rounds=1, updates_per_round=1,
        ppo={"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 1},
        critic_free={"num_generations": 2},
        eval={"max_new_tokens": 4, "batch_size": 8},
    )  # fmt: skip
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    result = SHAPING_ALGORITHMS[algorithm](shaping_inputs(policy, reward_model, params), params)
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


class _Recorder:
    def __init__(self, stop_after=None):
        self.healthy, self.diverged, self.starts, self.stop_after = [], [], 0, stop_after

    def record_healthy(self, round_index, model, row):
        self.healthy.append((round_index, row["updates"], row["ppo/reward"]))
        return self.stop_after is None or round_index < self.stop_after

    def record_diverged(self, round_index, row, reason):
        self.diverged.append((round_index, reason))

    def start_round(self):
        self.starts += 1


def _feed(callback, rewards):
    from transformers import TrainerControl, TrainerState

    state, control = TrainerState(), TrainerControl()
    for step, reward in enumerate(rewards, start=1):
        state.global_step = step
        callback.on_log(None, state, control, logs={"loss": 0.1, "reward": reward}, model=None)
        if control.should_training_stop:
            break
    return control


def test_a_round_closes_every_updates_per_round_steps_with_their_mean_statistics():
    from alignment_stages.ppo.critic_free import RoundCallback

    recorder = _Recorder()
    control = _feed(RoundCallback(recorder, updates_per_round=2), [1.0, 3.0, 5.0, 7.0])
    assert recorder.healthy == [(1, 2, 2.0), (2, 2, 6.0)] and not control.should_training_stop


def test_a_non_finite_statistic_stops_at_once_and_an_early_stop_ends_training():
    from alignment_stages.ppo.critic_free import RoundCallback

    recorder = _Recorder()
    control = _feed(RoundCallback(recorder, updates_per_round=2), [1.0, 3.0, float("nan"), 7.0])
    assert recorder.healthy == [(1, 2, 2.0)] and recorder.diverged[0][0] == 2
    assert "reward" in recorder.diverged[0][1] and control.should_training_stop
    early = _Recorder(stop_after=1)
    assert _feed(RoundCallback(early, 2), [1.0, 3.0, 5.0, 7.0]).should_training_stop
    assert [h[0] for h in early.healthy] == [1]


def test_one_trainer_runs_every_round(monkeypatch):
    import alignment_stages.ppo.critic_free as critic_free

    trainer_class, config_class = critic_free.TRAINERS["grpo"]
    built = []

    class CountingTrainer(trainer_class):
        def __init__(self, *args, **kwargs):
            built.append(kwargs["args"].max_steps)
            super().__init__(*args, **kwargs)

    monkeypatch.setitem(critic_free.TRAINERS, "grpo", (CountingTrainer, config_class))
    policy = tiny_policy()
    params = ShapingStageParams(
        algorithm="grpo", rounds=2, updates_per_round=2,
        ppo={"rollout_batch_size": 4, "response_length": 4, "num_minibatches": 1},
        critic_free={"num_generations": 2}, eval={"max_new_tokens": 4, "batch_size": 8},
    )  # fmt: skip
    reward_model = reward_model_from_policy(policy)
    result = critic_free.run_critic_free_rounds(
        shaping_inputs(policy, reward_model, params), params
    )
    assert built == [4]  # one trainer, 2 rounds × 2 updates: Adam and the schedule carry over
    assert result.ppo_history["round"].tolist() == [0, 1, 2]
    assert result.ppo_history.loc[1:, "updates"].tolist() == [2, 2]
    # each snapshot runs its own weights, not the live model's (Trainer wraps `forward`)
    first, second = (result.round_policies[r].model for r in ("round_001", "round_002"))
    assert "forward" not in vars(first)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert not torch.equal(first(input_ids=ids).logits, second(input_ids=ids).logits)
