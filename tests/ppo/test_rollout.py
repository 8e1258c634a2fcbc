"""EOS truncation, score position, the reference model and the untouched input policy."""

import contextlib

import pytest
import torch
from peft import get_peft_model

from alignment_stages.models import sampling as sampling_module
from alignment_stages.models.config import LoraParams
from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.lora import lora_config
from alignment_stages.models.precision import frozen_weights_cast_once
from alignment_stages.models.sampling import (
    encode_prompts,
    sample_categorical,
    sample_responses,
    sample_tokens,
    truncate_after_eos,
)
from alignment_stages.ppo.config import PPOParams
from alignment_stages.ppo.rollout import (
    TokenValueModel,
    response_values,
    unpadded_window,
)
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


def test_the_sampler_draws_each_token_at_its_probability_and_never_a_zero_one():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3], [0.0, 0.0, 0.0, 1.0]]).repeat(50_000, 1)
    torch.manual_seed(0)
    drawn = sample_categorical(probs).view(50_000, 2)
    first = torch.bincount(drawn[:, 0], minlength=4) / 50_000
    torch.testing.assert_close(first, torch.tensor([0.1, 0.0, 0.6, 0.3]), atol=0.01, rtol=0)
    assert drawn[:, 1].eq(3).all()


def _sample_without_cache(model, input_ids, mask, steps, temperature, eos, pad):
    """The oracle: every step recomputes the whole sequence, no KV cache."""
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool)
    tokens = []
    for _ in range(steps):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
        token = sample_categorical(torch.softmax(logits[:, -1].double() / temperature, -1))
        token = token.masked_fill(finished, pad)
        tokens.append(token)
        finished |= token == eos
        if finished.all():
            break
        input_ids = torch.cat([input_ids, token.unsqueeze(1)], 1)
        mask = torch.cat([mask, (~finished).long().unsqueeze(1)], 1)
    return torch.stack(tokens, 1)


def test_kv_cache_sampling_draws_the_same_tokens_as_recomputing_every_step():
    policy = tiny_policy()
    tokenizer, model = policy.tokenizer, policy.model.eval()
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")  # two prompt lengths: padding
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    torch.manual_seed(3)
    cached = sample_tokens(model, input_ids, mask, 12, 0.7, eos, pad).tokens
    torch.manual_seed(3)
    with torch.no_grad():
        oracle = _sample_without_cache(model, input_ids, mask, 12, 0.7, eos, pad)
    assert cached.tolist() == oracle.tolist()
    assert not cached.is_inference()  # later passes train on these tokens


def test_cutting_a_minibatch_to_its_unpadded_window_changes_no_log_prob_or_value():
    policy = tiny_policy()
    critic = TokenValueModel(reward_model_from_policy(policy).model).eval()
    model, tokenizer = policy.model.eval(), policy.tokenizer
    input_ids, prompt_mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    torch.manual_seed(0)
    query_responses, mask, response_mask, _, _ = sample_responses(
        model, tokenizer, input_ids, prompt_mask, 8, 1.0
    )
    # the short prompts only, with responses cut short: both kinds of all-padding columns
    rows = torch.tensor([1, 3, 5])
    response_mask = response_mask.clone()
    response_mask[rows, 5:] = False
    mask = torch.cat([prompt_mask, response_mask.long()], 1)
    ctx = input_ids.shape[1]
    first, kept = unpadded_window(mask[rows], response_mask[rows], ctx)
    assert first > 0 and kept == 5
    with torch.no_grad():
        full_logprobs, _ = response_logprobs(model, query_responses[rows], mask[rows], ctx)
        cut_logprobs, _ = response_logprobs(
            model, query_responses[rows, first : ctx + kept], mask[rows, first : ctx + kept],
            ctx - first,
        )  # fmt: skip
        full_values = response_values(critic, query_responses[rows], mask[rows], ctx)
        cut_values = response_values(
            critic, query_responses[rows, first : ctx + kept], mask[rows, first : ctx + kept],
            ctx - first,
        )  # fmt: skip
    torch.testing.assert_close(cut_logprobs, full_logprobs[:, :kept], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cut_values, full_values[:, :kept], atol=1e-5, rtol=1e-5)


def test_the_judge_penalty_is_taken_after_the_clip_and_the_reward_model_is_weighted():
    policy = tiny_policy()
    params = PPOParams(
        rollout_batch_size=8,
        response_length=6,
        num_minibatches=2,
        missing_eos_penalty=0.0,
        reward_clip=3.0,
        reward_model_weight=0.5,
        judge_penalty=2.0,
    )
    # raw scores 0, -20, 4, 2, ... ; every second rollout flagged
    raw = torch.tensor([0.0, -20.0, 4.0, 2.0] * 2)
    flagged = torch.tensor([0.0, 2.0] * 4)
    trainer = PPOTrainer(
        policy,
        reward_model_from_policy(policy),
        lambda prompts, texts, ids: raw[: len(texts)],
        params,
        penalty_fn=lambda prompts, texts: flagged[: len(texts)],
    )
    rollout = trainer.collect_rollout(PROMPTS)
    # 0.5 × raw, clipped to ±3, then the penalty: -20 → -10 → -3 → -5, beyond the clip
    assert rollout.scores.tolist() == [0.0, -5.0, 2.0, -1.0] * 2
    assert rollout.raw_scores.tolist() == raw.tolist()
    assert trainer.update(rollout)["ppo/judge_penalty"] == pytest.approx(1.0)


def _lora_policy_model():
    """A tiny policy under a LoRA adapter: frozen base weights, a tied lm_head, trainable factors."""
    policy = tiny_policy()
    config = lora_config(LoraParams(enabled=True, r=4, alpha=8), "CAUSAL_LM")
    return policy.tokenizer, get_peft_model(policy.model, config).eval()


def test_under_bf16_frozen_weights_are_cast_once_for_the_loop_and_put_back():
    tokenizer, model = _lora_policy_model()
    before = {name: p for name, p in model.named_parameters()}
    lm_head, embedding = model.get_output_embeddings(), model.get_input_embeddings()
    assert lm_head.weight is embedding.weight
    frozen = sum(
        1 for m in model.modules() if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad
    )
    with frozen_weights_cast_once(model) as swapped:
        assert swapped == 0  # no autocast: nothing to cast
    with torch.autocast("cpu", dtype=torch.bfloat16), frozen_weights_cast_once(model) as swapped:
        assert swapped == frozen > 0
        assert lm_head.weight.dtype == torch.bfloat16 and embedding.weight.dtype == torch.float32
        assert all(p.dtype == torch.float32 for n, p in model.named_parameters() if "lora_" in n)
    # The very same fp32 parameters afterwards, the tie included.
    assert {name: p for name, p in model.named_parameters()} == before
    assert lm_head.weight is embedding.weight and lm_head.weight.dtype == torch.float32


def test_casting_once_samples_the_tokens_that_casting_every_step_samples(monkeypatch):
    tokenizer, model = _lora_policy_model()
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id

    def draw() -> torch.Tensor:
        torch.manual_seed(5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return sampling_module.sample_tokens(model, input_ids, mask, 10, 1.0, eos, pad).tokens

    once = draw()
    # Without the swap, autocast casts every frozen weight at every decoding step.
    monkeypatch.setattr(
        sampling_module, "frozen_weights_cast_once", lambda m: contextlib.nullcontext(0)
    )
    assert once.tolist() == draw().tolist()
