"""PPO learns a toy reward within a bounded KL (about half a minute on a 2-core CPU)."""

import torch

from alignment_stages.models.artifacts import ModelArtifact
from alignment_stages.models.config import TinyModelParams
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer
from alignment_stages.models.training import seed_everything
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy

TARGET_TOKENS = set(range(100, 130))  # 30 of 300 ids: about 10% of random tokens hit them
PROMPTS = [[{"role": "user", "content": "How do I cook rice?"}]] * 32
RESPONSE_LENGTH = 8


def target_share(prompts, texts, token_ids) -> torch.Tensor:
    """Reward: the share of the response budget spent on target tokens."""
    return torch.tensor(
        [sum(t in TARGET_TOKENS for t in ids) / RESPONSE_LENGTH for ids in token_ids]
    )


def test_ppo_raises_a_toy_reward_within_a_bounded_kl():
    seed_everything(0)
    texts = ["How do I cook rice?", "Rinse it, then simmer it.", "Go away.", "I can't help."] * 5
    tokenizer = train_tokenizer(texts, 300)
    size = TinyModelParams(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, max_position_embeddings=64)  # fmt: skip
    policy = ModelArtifact(build_tiny_causal_lm(tokenizer, size), tokenizer)
    params = PPOParams(
        rollout_batch_size=32, response_length=RESPONSE_LENGTH, num_minibatches=4, learning_rate=2e-3,
        kl_coef=0.05, kl_target=6.0, reward_clip=None, missing_eos_penalty=0.0,
    )  # fmt: skip
    trainer = PPOTrainer(policy, reward_model_from_policy(policy), target_share, params)
    history = [trainer.step(PROMPTS) for _ in range(30)]

    start = sum(h["ppo/reward"] for h in history[:3]) / 3
    end = sum(h["ppo/reward"] for h in history[-3:]) / 3
    assert start < 0.2
    assert end > start + 0.25, (start, end)
    assert max(h["ppo/kl"] for h in history) < 15.0  # the adaptive controller holds KL near 6
    assert history[-1]["ppo/explained_variance"] > 0.3  # the critic learned the returns


def test_ppo_with_the_leave_one_out_baseline_raises_the_reward_without_a_critic():
    seed_everything(0)
    texts = ["How do I cook rice?", "Rinse it, then simmer it.", "Go away.", "I can't help."] * 5
    tokenizer = train_tokenizer(texts, 300)
    size = TinyModelParams(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, max_position_embeddings=64)  # fmt: skip
    policy = ModelArtifact(build_tiny_causal_lm(tokenizer, size), tokenizer)
    params = PPOParams(
        rollout_batch_size=32, samples_per_prompt=4, advantage_estimator="rloo",
        response_length=RESPONSE_LENGTH, num_minibatches=4, learning_rate=2e-3, kl_coef=0.05,
        kl_target=6.0, reward_clip=None, missing_eos_penalty=0.0,
    )  # fmt: skip
    trainer = PPOTrainer(policy, reward_model_from_policy(policy), target_share, params)
    assert trainer.value_model is None  # no critic is built, trained or stepped
    history = [trainer.step(PROMPTS) for _ in range(30)]

    start = sum(h["ppo/reward"] for h in history[:3]) / 3
    end = sum(h["ppo/reward"] for h in history[-3:]) / 3
    assert start < 0.2
    assert end > start + 0.25, (start, end)
    assert max(h["ppo/kl"] for h in history) < 15.0
    assert not any(key.startswith("ppo/value") for key in history[-1])
