"""EOS truncation, score position, the reference model and the untouched input policy."""

import pytest
import torch

from alignment_stages.models.config import LoraParams
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.rollout import encode_prompts, truncate_after_eos
from alignment_stages.ppo.trainer import PPOTrainer
from alignment_stages.reward.train import reward_model_from_policy
from tests.models.tiny import tiny_policy

EOS, PAD = 2, 0
PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "user", "content": "Go?"}],
] * 4


def test_everything_after_the_first_eos_is_padding_and_masked():
    responses = torch.tensor([[5, EOS, 7, EOS], [5, 6, 7, 8], [EOS, 9, 9, 9]])
    truncated, mask, has_eos = truncate_after_eos(responses, EOS, PAD)
    assert truncated.tolist() == [[5, EOS, PAD, PAD], [5, 6, 7, 8], [EOS, PAD, PAD, PAD]]
    assert mask.int().tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert has_eos.tolist() == [True, False, True]


def test_prompts_are_left_padded():
    tokenizer = tiny_policy().tokenizer
    input_ids, mask = encode_prompts(tokenizer, [PROMPTS[0], PROMPTS[1]], "cpu")
    assert (
        mask[:, -1].all() and input_ids[:, -1].eq(input_ids[0, -1]).all()
    )  # both end at <|assistant|>
    assert not mask[1, 0] and input_ids[1, 0] == tokenizer.pad_token_id


def _trainer(lora=None, score=None, **overrides):
    policy = tiny_policy()
    params = PPOParams(rollout_batch_size=8, response_length=6, num_minibatches=2, **overrides)
    score_fn = score or (lambda prompts, texts, ids: torch.zeros(len(texts)))
    return policy, PPOTrainer(policy, reward_model_from_policy(policy), score_fn, params, lora=lora)


def test_the_score_sees_only_text_up_to_the_first_eos():
    seen = []

    def score(prompts, texts, ids):
        seen.extend(ids)
        return torch.zeros(len(texts))

    policy, trainer = _trainer(score=score)
    torch.manual_seed(0)
    rollout = trainer.collect_rollout(PROMPTS)
    eos = policy.tokenizer.eos_token_id
    for ids, length, has_eos in zip(
        seen, rollout.response_mask.sum(-1), rollout.has_eos, strict=True
    ):
        assert len(ids) == length
        assert (ids[-1] == eos) == bool(has_eos) and eos not in ids[:-1]


@pytest.mark.parametrize(
    "lora", [None, LoraParams(enabled=True, r=2, alpha=4, target_modules=["q_proj", "v_proj"])]
)
def test_policy_starts_equal_to_its_reference_and_first_update_has_ratio_one(lora):
    policy, trainer = _trainer(lora=lora, learning_rate=1e-12)
    if lora is not None:
        assert trainer.reference is None  # the base with its adapter disabled, not a copy
    torch.manual_seed(0)
    rollout = trainer.collect_rollout(PROMPTS)
    torch.testing.assert_close(rollout.logprobs, rollout.ref_logprobs)
    stats = trainer.update(rollout)
    assert stats["ppo/kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["ppo/approx_kl"] == pytest.approx(0.0, abs=1e-6)
    assert stats["ppo/clipfrac"] == 0.0


def test_training_never_touches_the_input_policy():
    policy, trainer = _trainer(learning_rate=1e-2, score=lambda p, t, i: torch.randn(len(t)))
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    for _ in range(2):
        trainer.step(PROMPTS)
    after = policy.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trained = trainer.unwrapped_policy.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)


def test_a_policy_fresh_from_a_trl_trainer_trains_as_a_copy():
    """Trainer-installed forward wrappers once made the PPO copy run the original's weights."""
    import pandas as pd

    from alignment_stages.models.base import build_base_policy
    from alignment_stages.models.config import BaseModelParams
    from tests.models.tiny import PARAMS

    examples = pd.DataFrame(
        {"prompt_messages": [PROMPTS[0]] * 8, "chosen": ["Rinse it."] * 8, "rejected": ["No."] * 8}
    )
    policy = build_base_policy(
        examples, BaseModelParams(tiny=PARAMS.model_dump(), sft={"epochs": 1, "batch_size": 8})
    )
    assert "forward" not in vars(policy.model)
    trainer = PPOTrainer(
        policy, reward_model_from_policy(policy), lambda p, t, i: torch.randn(len(t)),
        PPOParams(rollout_batch_size=8, response_length=6, num_minibatches=2, learning_rate=1e-2),
    )  # fmt: skip
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    trainer.step(PROMPTS)
    trained = trainer.unwrapped_policy.state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)
    assert all(torch.equal(before[k], v) for k, v in policy.model.state_dict().items())
