"""The critic in the units of the normalised reward, a LoRA reward model as its start, and
attention dropout off during PPO."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import LoraParams, TinyModelParams
from alignment_stages.models.sampling import encode_prompts
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.policy_and_value import disable_dropout
from alignment_stages.ppo.rollout import ScoreNormalisation
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.scoring import score_responses
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "user", "content": "Go?"}],
]
TEXTS = ["How do I cook rice?", "Rinse it, then simmer it.", "Go away.", "I can't help."] * 5


def _toy_problem():
    """A policy and a reward model whose raw scores sit far from 0 with a small spread (SmolLM2's
    chosen-score std was 0.112): the units mismatch the old critic could not bridge."""
    seed_everything(0)
    tokenizer = train_tokenizer(TEXTS, 300)
    size = TinyModelParams(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, max_position_embeddings=64)  # fmt: skip
    policy = ModelArtifact(build_tiny_causal_lm(tokenizer, size), tokenizer)
    reward = reward_model_from_policy(policy)
    with torch.no_grad():
        reward.model.score.weight.mul_(5.0)
    return policy, reward


def test_explained_variance_becomes_clearly_positive_within_a_few_updates():
    policy, reward = _toy_problem()
    prompts = PROMPTS * 16
    params = PPOParams(rollout_batch_size=32, response_length=8, num_minibatches=4,
                       learning_rate=1e-3, missing_eos_penalty=0.0, reward_clip=None)  # fmt: skip
    # The normalisation of the policy's own starting scores, as reward_model_metrics gives it.
    probe = PPOTrainer(policy, reward, lambda p, t, i: score_responses(reward, p, t), params)
    torch.manual_seed(1)
    raw = probe.collect_rollout(prompts).raw_scores
    normalisation = ScoreNormalisation(float(raw.mean()), float(raw.std()))
    trainer = PPOTrainer(policy, reward, lambda p, t, i: score_responses(reward, p, t), params,
                         normalisation=normalisation)  # fmt: skip
    torch.manual_seed(0)
    history = [trainer.step(prompts)["ppo/explained_variance"] for _ in range(10)]
    # The reward model's scores at unfinished prefixes are noise, rescaled into normalised units
    # with the rest: the critic starts far below 0 and learns the returns within a few updates.
    assert max(history[-3:]) > 0.3 and min(history[-3:]) > 0.0, history


def test_the_critic_starts_at_the_normalised_reward_model_score():
    policy, reward = _toy_problem()
    normalisation = ScoreNormalisation(mean=0.7, std=0.05)
    params = PPOParams(rollout_batch_size=2, response_length=4, num_minibatches=1)
    trainer = PPOTrainer(policy, reward, lambda p, t, i: torch.zeros(len(t)), params,
                         normalisation=normalisation)  # fmt: skip
    input_ids, mask = encode_prompts(policy.tokenizer, PROMPTS, "cpu")
    with torch.no_grad():
        values = trainer.value_model(input_ids, mask)[:, -1]
        raw = reward.model(input_ids=input_ids, attention_mask=mask).logits[:, 0]
    torch.testing.assert_close(values, (raw - 0.7) / 0.05, atol=1e-4, rtol=1e-4)


def test_a_lora_reward_model_is_merged_into_the_critics_copy():
    policy = tiny_policy()
    reward = reward_model_from_policy(policy)
    config = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS")
    lora = get_peft_model(reward.model, config)
    with torch.no_grad():
        for name, parameter in lora.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)  # an adapter that changes the score
    lora_reward = ModelArtifact(lora, reward.tokenizer, kind="sequence_classification")
    params = PPOParams(rollout_batch_size=2, response_length=4, num_minibatches=1)
    trainer = PPOTrainer(policy, lora_reward, lambda p, t, i: torch.zeros(len(t)), params)
    assert hasattr(lora, "peft_config")  # the reward model itself keeps its adapter
    input_ids, mask = encode_prompts(policy.tokenizer, PROMPTS, "cpu")
    with torch.no_grad():
        values = trainer.value_model(input_ids, mask)[:, -1]
        scores = lora(input_ids=input_ids, attention_mask=mask).logits[:, 0]
    torch.testing.assert_close(values, scores, atol=1e-4, rtol=1e-4)
    stats = trainer.step(PROMPTS)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_attention_dropout_is_off_in_train_mode(attention):
    policy = tiny_policy()
    model = policy.model
    model.config.attention_dropout = 0.5
    for module in model.modules():
        if hasattr(module, "attention_dropout"):
            module.attention_dropout = 0.5
    model.set_attn_implementation(attention)
    input_ids, mask = encode_prompts(policy.tokenizer, PROMPTS, "cpu")
    model.train()
    torch.manual_seed(0)
    noisy = [model(input_ids=input_ids, attention_mask=mask).logits for _ in range(2)]
    assert not torch.allclose(noisy[0], noisy[1])  # the toy really drops attention weights
    disable_dropout(model)
    trained = model(input_ids=input_ids, attention_mask=mask).logits
    model.eval()
    with torch.no_grad():
        evaluated = model(input_ids=input_ids, attention_mask=mask).logits
    torch.testing.assert_close(trained, evaluated)
    assert model.config.attention_dropout == 0.0


def test_the_critics_gradient_scale_does_not_shrink_the_policys_update():
    """Policy and critic are clipped each on its own: the policy's step is the same whether the
    value loss weighs 0.1 or 1000 (one joint norm scaled a LoRA policy's gradients to nothing)."""
    policy, reward = _toy_problem()
    lora = LoraParams(enabled=True, r=4, alpha=8)
    adapters = []
    for coefficient in (0.1, 1000.0):
        params = PPOParams(rollout_batch_size=4, response_length=6, num_minibatches=1,
                           ppo_epochs=1, learning_rate=1e-3, value_loss_coef=coefficient)  # fmt: skip
        seed_everything(0)  # the same LoRA initialisation for both
        trainer = PPOTrainer(policy, reward, lambda p, t, i: score_responses(reward, p, t),
                             params, lora=lora)  # fmt: skip
        torch.manual_seed(0)
        stats = trainer.step(PROMPTS * 2)
        assert stats["ppo/value_grad_norm"] > params.max_grad_norm  # the critic was clipped
        adapters.append(
            {
                n: q.detach().clone()
                for n, q in trainer.unwrapped_policy.named_parameters()
                if q.requires_grad
            }  # fmt: skip
        )
    assert adapters[0].keys() == adapters[1].keys() and adapters[0]
    assert any(q.abs().sum() > 0 for n, q in adapters[0].items() if "lora_B" in n)  # it moved
    for name in adapters[0]:
        torch.testing.assert_close(adapters[0][name], adapters[1][name], msg=name)
