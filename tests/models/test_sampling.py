"""The sampler at real vocabulary sizes, every EOS id, the never-sampled pad, the KV-cache
argument of transformers ≥ 5.40, and the log-probs it reads off its own draw."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from alignment_stages.models.logprobs import response_logprobs
from alignment_stages.models.sampling import (
    cumulative_probabilities,
    encode_prompts,
    eos_token_ids,
    length_batches,
    prompt_length_batches,
    sample_categorical,
    sample_responses,
    sample_tokens,
    truncate_after_eos,
    unsampled_token_ids,
)
from tests.models.tiny import tiny_policy

PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "user", "content": "Go?"}],
]


def test_the_sampler_is_exact_at_a_152k_vocabulary():
    """Frequencies against the float64 softmax, per block of 1,584 token ids, from 4M draws.

    The former float32 running sum (total variation 8.8e-4 here, 40,971 ids never drawn) fails
    this: its deficit sits in the last blocks, tens of standard deviations out.
    """
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 152_064, generator=generator, dtype=torch.float64) * 3
    probs = torch.softmax(logits, dim=-1)
    torch.manual_seed(0)
    draws = sample_categorical(probs.float(), num_samples=4_000_000)[0]
    blocks = 96
    expected = probs[0].view(blocks, -1).sum(-1) * draws.numel()
    observed = torch.bincount(draws // (152_064 // blocks), minlength=blocks).double()
    z = (observed - expected) / expected.sqrt()
    assert z.abs().max() < 5, z.abs().max()
    assert ((z**2).sum() - blocks).abs() < 6 * (2 * blocks) ** 0.5  # chi-square, 95 dof


def test_each_token_owns_exactly_its_softmax_probability_at_152k():
    """The interval each token owns is its probability: total variation 8.8e-4 with a float32
    running sum (tokens below its 6e-8 resolution owned nothing); here about 3e-12."""
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 152_064, generator=generator, dtype=torch.float64) * 3
    probs = torch.softmax(logits, dim=-1)
    cumulative = cumulative_probabilities(probs.float())
    owned = torch.diff(cumulative, dim=-1, prepend=torch.zeros(4, 1, dtype=torch.float64))
    owned = owned / cumulative[:, -1:]
    total_variation = 0.5 * (owned - probs).abs().sum(-1)
    assert total_variation.max() < 1e-6  # float32 probabilities in: their own rounding only
    assert (owned > 0).all()  # every token can be drawn
    exact = cumulative_probabilities(probs)
    owned = torch.diff(exact, dim=-1, prepend=torch.zeros(4, 1, dtype=torch.float64))
    assert (0.5 * (owned / exact[:, -1:] - probs).abs().sum(-1)).max() < 1e-10


def test_the_sampler_draws_small_probabilities_at_their_rate():
    """A token of probability 1e-5 behind a 152k vocabulary of larger ones is still drawn."""
    probs = torch.full((1, 152_064), 1.0)
    probs[0, -1] = 152_064 * 1e-5  # p ≈ 1e-5 at the very end of the running sum
    torch.manual_seed(0)
    draws = sample_categorical(probs, num_samples=2_000_000)[0]
    hits = int((draws == 152_063).sum())
    assert abs(hits - 20) < 5 * 20**0.5, hits


class ScriptedLM(nn.Module):
    """A language model that always puts nearly all probability on `favourite`."""

    def __init__(self, vocab: int, favourite: int, eos: list[int]):
        super().__init__()
        self.vocab, self.favourite = vocab, favourite
        self.generation_config = SimpleNamespace(eos_token_id=eos)
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, logits_to_keep=0, **kwargs):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., self.favourite] = 30.0
        keep = logits_to_keep or input_ids.shape[1]
        return SimpleNamespace(logits=logits[:, -keep:], cache=None)


def test_every_eos_id_of_the_generation_config_ends_a_response():
    tokenizer = tiny_policy().tokenizer
    second_eos = 7  # as Qwen2.5-Instruct's <|endoftext|> beside <|im_end|>
    model = ScriptedLM(len(tokenizer), second_eos, [tokenizer.eos_token_id, second_eos])
    assert eos_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, second_eos})
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    _, _, response_mask, has_eos, _ = sample_responses(model, tokenizer, input_ids, mask, 5, 1.0)
    assert has_eos.all() and response_mask.sum(-1).tolist() == [1, 1]
    _, kept, ended = truncate_after_eos(torch.tensor([[5, second_eos, 9]]), [2, second_eos], 0)
    assert kept.int().tolist() == [[1, 1, 0]] and ended.tolist() == [True]


def test_a_pad_of_its_own_is_never_sampled_and_has_no_probability():
    tokenizer = tiny_policy().tokenizer
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    model = ScriptedLM(len(tokenizer), pad, [eos])  # a model that would pick pad every time
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    torch.manual_seed(0)
    query_responses, full_mask, response_mask, _, _ = sample_responses(
        model, tokenizer, input_ids, mask, 6, 1.0
    )
    assert pad not in query_responses[:, input_ids.shape[1] :][response_mask].tolist()
    logp, _ = response_logprobs(model, query_responses, full_mask, input_ids.shape[1], 1.0, [pad])
    uniform = -torch.log(torch.tensor(len(tokenizer) - 1.0))  # the rest share the mass evenly
    torch.testing.assert_close(logp[response_mask], uniform.expand(int(response_mask.sum())))


def test_sampling_uses_the_cache_argument_of_transformers_5_40():
    policy = tiny_policy()
    tokenizer = policy.tokenizer
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # `past_key_values=` warns it is removed
        sample_tokens(policy.model.eval(), input_ids, mask, 4, 1.0, [tokenizer.eos_token_id],
                      tokenizer.pad_token_id)  # fmt: skip


@pytest.mark.parametrize("vocab", [1024, 49_152])
def test_sampling_keeps_its_inverse_transform_cost_at_small_vocabularies(vocab):
    """Not a timing test: the sampler draws B uniforms, never B·V (as multinomial/Gumbel do)."""
    probs = torch.softmax(torch.randn(16, vocab), -1)
    state = torch.get_rng_state()
    sample_categorical(probs)
    consumed = torch.rand(1)
    torch.set_rng_state(state)
    torch.rand(16, dtype=torch.float64)
    assert torch.equal(consumed, torch.rand(1))


def test_the_samplers_log_probs_are_those_a_forward_pass_recomputes():
    policy = tiny_policy()
    model, tokenizer = policy.model.eval(), policy.tokenizer
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")  # two lengths: left padding
    banned = unsampled_token_ids(tokenizer, eos_token_ids(model, tokenizer))
    assert banned  # the tiny tokenizer's pad is its own: the −∞ logit is exercised
    torch.manual_seed(2)
    sampled = sample_responses(model, tokenizer, input_ids, mask, 12, 0.7)
    with torch.no_grad():
        recomputed, _ = response_logprobs(model, sampled.query_responses, sampled.attention_mask,
                                          input_ids.shape[1], 0.7, banned)  # fmt: skip
    kept = sampled.response_mask
    torch.testing.assert_close(sampled.logprobs[kept], recomputed[kept], atol=1e-5, rtol=1e-5)
    assert (sampled.logprobs[~kept] == 0).all()
    # At T = 0.7 the log-probs are of softmax(logits / 0.7), not of the logits at T = 1.
    with torch.no_grad():
        at_one, _ = response_logprobs(model, sampled.query_responses, sampled.attention_mask,
                                      input_ids.shape[1], 1.0, banned)  # fmt: skip
    assert (sampled.logprobs[kept] - at_one[kept]).abs().max() > 1e-3


def test_measuring_log_probs_without_entropy_gives_the_training_log_probs():
    policy = tiny_policy()
    model, tokenizer = policy.model.eval(), policy.tokenizer
    input_ids, mask = encode_prompts(tokenizer, PROMPTS, "cpu")
    banned = unsampled_token_ids(tokenizer, eos_token_ids(model, tokenizer))
    torch.manual_seed(4)
    sampled = sample_responses(model, tokenizer, input_ids, mask, 10, 1.3)
    query_responses = sampled.query_responses.clone()
    query_responses[0, -1] = banned[0]  # a banned target, as the padding after EOS is
    args = (model, query_responses, sampled.attention_mask, input_ids.shape[1], 1.3, banned)
    with torch.no_grad():
        trained, _ = response_logprobs(*args)
    with torch.no_grad():
        measured, none = response_logprobs(*args, entropy=False)
    assert none is None
    assert measured[0, -1] == 0 and trained[0, -1] == 0
    torch.testing.assert_close(measured, trained, atol=1e-6, rtol=1e-6)


def test_length_batches_group_similar_prompts_and_cover_each_once():
    prompts = [[{"role": "user", "content": "x" * n}] for n in (900, 5, 40, 7, 600, 30)]
    assert prompt_length_batches(prompts, 2) == [[1, 3], [5, 2], [4, 0]]
    assert length_batches([3, 1, 2], 2) == [[1, 2], [0]]


def test_answers_come_back_in_the_prompts_order_whatever_the_batching():
    """sample_answers and the evaluation batch prompts by length; each answer must still sit in
    its own prompt's row. Near-greedy sampling (T = 1e-4) makes an answer a function of its
    prompt alone, so one batch and batches of one must agree row for row."""
    import pandas as pd

    from alignment_stages.evaluation.config import RoundEvalParams
    from alignment_stages.evaluation.snapshot import sample_generations
    from alignment_stages.judges.panel_labels import AnswerSampleParams, sample_answers

    policy = tiny_policy()
    words = ["How do I cook rice and beans for a large family dinner tonight?", "Hi?",
             "How do I cook dish 3?", "Rice?", "How do I wash and then cook a dish?"]  # fmt: skip
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": w}] for w in words],
        "category": ["benign"] * 5, "prompt_id": [f"p{i}" for i in range(5)],
    })  # fmt: skip

    def answer(table, size):
        params = AnswerSampleParams(prompts=len(table), samples_per_prompt=1, max_new_tokens=6,
                                    temperature=1e-4, batch_size=size)  # fmt: skip
        return sample_answers(policy, table, params)["answer"].tolist()

    def generate(table, size):
        params = RoundEvalParams(max_new_tokens=6, temperature=1e-4, batch_size=size)
        return sample_generations(policy, policy, table, params).texts

    alone = [answer(prompts.iloc[[i]].reset_index(drop=True), 1)[0] for i in range(5)]
    assert answer(prompts, 5) == answer(prompts, 2) == alone
    assert len(set(alone)) > 1  # the prompts are answered apart
    generated_alone = [generate(prompts.iloc[[i]], 1)[0] for i in range(5)]
    assert generate(prompts, 5) == generate(prompts, 2) == generated_alone
