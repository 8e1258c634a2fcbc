"""PolicyAndValue: one module for policy and critic, so one `accelerator.prepare` covers both
(DeepSpeed and FSDP2 take one model). These run without DeepSpeed; test_deepspeed.py runs the
trainer under the DeepSpeed plugin where it is installed."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.sampling import encode_prompts
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.policy_and_value import PolicyAndValue
from alignment_stages.ppo.rollout import TokenValueModel, response_values
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "user", "content": "Go?"}],
]
ESTIMATORS = {
    "gae": PPOParams(rollout_batch_size=2, response_length=4, num_minibatches=1),
    "rloo": PPOParams(rollout_batch_size=2, response_length=4, num_minibatches=1,
                      advantage_estimator="rloo", samples_per_prompt=2),
}  # fmt: skip


def _batch(policy):
    input_ids, mask = encode_prompts(policy.tokenizer, PROMPTS, "cpu")
    torch.manual_seed(0)
    responses = torch.randint(3, policy.tokenizer.vocab_size, (2, 5))
    return torch.cat([input_ids, responses], 1), torch.cat([mask, torch.ones_like(responses)], 1)


def test_one_forward_gives_the_policys_logprobs_and_the_critics_values():
    seed_everything(0)
    policy = tiny_policy()
    critic = TokenValueModel(reward_model_from_policy(policy).model)
    query_responses, mask = _batch(policy)
    context = query_responses.shape[1] - 5
    output = PolicyAndValue(policy.model, critic)(query_responses, mask, context, 0.7, [4])
    logprobs, entropy = response_logprobs(policy.model, query_responses, mask, context, 0.7, [4])
    torch.testing.assert_close(output.logprobs, logprobs, rtol=0, atol=0)
    torch.testing.assert_close(output.entropy, entropy, rtol=0, atol=0)
    values = response_values(critic, query_responses, mask, context)
    torch.testing.assert_close(output.values, values, rtol=0, atol=0)
    # Both losses' gradients reach their own model through the one forward.
    (output.logprobs.sum() + output.values.sum()).backward()
    assert all(p.grad is not None for p in policy.model.parameters() if p.requires_grad)
    assert all(p.grad is not None for p in critic.parameters() if p.requires_grad)


def test_without_a_critic_the_wrapper_holds_the_policy_alone():
    policy = tiny_policy()
    wrapper = PolicyAndValue(policy.model)
    query_responses, mask = _batch(policy)
    output = wrapper(query_responses, mask, query_responses.shape[1] - 5)
    assert output.values is None
    assert [name for name, _ in wrapper.named_children()] == ["policy"]


def test_the_wrapper_names_the_decoder_layers_fsdp_shards_by():
    policy = tiny_policy()
    critic = TokenValueModel(reward_model_from_policy(policy).model)
    assert PolicyAndValue(policy.model, critic)._no_split_modules == ["LlamaDecoderLayer"]
    assert PolicyAndValue(policy.model)._no_split_modules == ["LlamaDecoderLayer"]


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_the_trainer_prepares_one_module_and_one_optimizer(estimator, monkeypatch):
    prepared = []
    real_prepare = Accelerator.prepare

    def recording_prepare(self, *args, **kwargs):
        prepared.append(args)
        return real_prepare(self, *args, **kwargs)

    monkeypatch.setattr(Accelerator, "prepare", recording_prepare)
    policy = tiny_policy()
    params = ESTIMATORS[estimator]
    trainer = PPOTrainer(policy, reward_model_from_policy(policy),
                         lambda p, t, i: torch.zeros(len(t)), params)  # fmt: skip
    assert len(prepared) == 1
    modules = [obj for obj in prepared[0] if isinstance(obj, torch.nn.Module)]
    assert len(modules) == 1 and isinstance(modules[0], PolicyAndValue)
    # The callers' views are the wrapper's parts: snapshots, sampling and the critic tests.
    assert trainer.unwrapped_policy is modules[0].policy
    assert trainer.value_model is modules[0].value_model
    assert (trainer.value_model is None) == (estimator == "rloo")
    # One optimizer over every trainable weight of both, each once, as before the wrapper.
    optimised = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    trainable = [p for p in modules[0].parameters() if p.requires_grad]
    assert len(optimised) == len({id(p) for p in optimised}) == len(trainable)
    assert {id(p) for p in optimised} == {id(p) for p in trainable}
    stats = trainer.step([PROMPTS[0]] * params.rollout_batch_size)  # one rloo group of two
    # Clipped each on its own outside DeepSpeed: the critic's norm is its own key.
    assert "ppo/policy_grad_norm" in stats
    assert ("ppo/value_grad_norm" in stats) == (estimator == "gae")


def test_a_launch_whose_processes_would_train_alone_is_refused(monkeypatch):
    # What accelerate 1.15 makes of a DeepSpeed or FSDP config on a CPU machine without gloo
    # named: every one of the launched processes believes it is the only one.
    monkeypatch.setenv("WORLD_SIZE", "2")
    policy = tiny_policy()
    with pytest.raises(RuntimeError, match="2 processes were launched.*each process would train"):
        PPOTrainer(policy, reward_model_from_policy(policy),
                   lambda p, t, i: torch.zeros(len(t)), ESTIMATORS["gae"])  # fmt: skip
