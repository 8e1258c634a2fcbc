"""Oracle tests for the behaviour metrics: hand-computed values, a uniform model, padding."""

import math

import pytest
import torch

from alignment_stages.behaviour.metrics import (
    BehaviourSnapshot,
    distinct_n,
    eos_rate,
    kl_estimators,
    kl_to_reference,
    label_flip_rate,
    length_stats,
    probe_perplexity,
    summarise_generations,
    violation_rate,
)
from tests.models.tiny import tiny_policy

OK, BAD = "ok", "violation"  # judged labels
PROMPTS = [
    [{"role": "user", "content": "How do I cook rice?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Go away."}],
    [{"role": "user", "content": "Rinse it?"}],
    [{"role": "user", "content": "I can't help with that. How do I cook rice?"}],
]
REFERENCES = ["Rinse it, then simmer it.", "No.", "I can't help with that, go away.", "Rinse it."]


def test_distinct_n_by_hand():
    texts = ["a b a b", "a c"]
    # unigrams a b a b a c: 3 distinct of 6; bigrams (ab, ba, ab) + (ac): 3 distinct of 4
    assert distinct_n(texts, 1) == pytest.approx(3 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(["b a", "a c"], 2) == 1.0  # "a a" across the text boundary is no bigram
    assert distinct_n(["one", ""], 2) == 0.0
    with pytest.raises(ValueError, match="n must be"):
        distinct_n(texts, 0)


def test_rates_and_length_stats_by_hand():
    assert violation_rate([OK, BAD, BAD, OK]) == 0.5
    assert eos_rate([True, False, True]) == pytest.approx(2 / 3)
    assert length_stats([2, 4, 4, 4, 5, 5, 7, 9]) == (5.0, 2.0)
    for rate in (violation_rate, eos_rate, length_stats):
        with pytest.raises(ValueError, match="empty"):
            rate([])


def test_label_flip_rate_by_hand():
    previous = ["ok", "violation", "ok", "ok"]
    current = ["violation", "violation", "ok", "violation"]
    assert label_flip_rate(previous, current) == 0.5
    with pytest.raises(ValueError, match="differ in length"):
        label_flip_rate(previous, current[:3])


def test_kl_estimators_against_hand_computed_values():
    logp = torch.log(torch.tensor([0.5, 0.25, 0.1]))
    logp_ref = torch.log(torch.tensor([0.25, 0.5, 0.1]))
    log_r = torch.tensor([math.log(0.5), math.log(2.0), 0.0])  # log π_ref − log π
    k = kl_estimators(logp, logp_ref)
    torch.testing.assert_close(k["k1"], -log_r)
    torch.testing.assert_close(k["k2"], 0.5 * log_r**2)
    torch.testing.assert_close(
        k["k3"], torch.tensor([0.5 - 1 - math.log(0.5), 1 - math.log(2.0), 0.0])
    )
    assert (kl_estimators(torch.randn(100), torch.randn(100))["k3"] >= 0).all()
    with pytest.raises(ValueError, match="differ"):
        kl_estimators(torch.zeros(2), torch.zeros(3))


def test_kl_to_reference_sums_real_tokens_and_averages_sequences():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -9.0]])
    logp_ref = torch.tensor([[-1.5, -2.5, -3.0], [-2.0, -1.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # the last token of row 2 is padding
    # row 1: 0.5 + 0.5 + 0 = 1.0; row 2: 1.0 + 0 = 1.0 (the padded -9 vs 0 is ignored)
    assert kl_to_reference(logp, logp_ref, mask) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        kl_to_reference(logp, logp_ref, mask[:, :2])


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    artifact = tiny_policy()
    with torch.no_grad():
        for parameter in artifact.model.parameters():
            parameter.zero_()  # every logit is 0: a uniform next-token distribution
    perplexity = probe_perplexity(artifact, PROMPTS, REFERENCES, batch_size=2)
    assert perplexity == pytest.approx(artifact.model.config.vocab_size, rel=1e-5)


def test_perplexity_counts_only_the_reference_tokens_and_its_eos():
    artifact = tiny_policy()
    tokenizer, prompt, reference = artifact.tokenizer, PROMPTS[0], REFERENCES[0]
    ids = tokenizer.apply_chat_template(
        [*prompt, {"role": "assistant", "content": reference}], tokenize=True, return_dict=True
    )["input_ids"]
    n_reference = len(tokenizer(reference)["input_ids"]) + 1  # the answer, then its closing EOS
    assert ids[-1] == tokenizer.eos_token_id
    with torch.no_grad():
        logits = artifact.model(input_ids=torch.tensor([ids])).logits[0]
    logp = torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    expected = math.exp(float(-logp[-n_reference:].mean()))
    assert probe_perplexity(artifact, [prompt], [reference]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_padding_does_not_change_perplexity(padding_side):
    torch.manual_seed(0)
    artifact = tiny_policy()
    artifact.tokenizer.padding_side = padding_side
    alone = probe_perplexity(artifact, PROMPTS, REFERENCES, batch_size=1)
    together = probe_perplexity(artifact, PROMPTS, REFERENCES, batch_size=4)
    assert together == pytest.approx(alone, rel=1e-5)


def test_perplexity_rejects_mismatched_or_empty_inputs():
    artifact = tiny_policy()
    with pytest.raises(ValueError, match="4 prompts but 3 references"):
        probe_perplexity(artifact, PROMPTS, REFERENCES[:3])
    with pytest.raises(ValueError, match="empty"):
        probe_perplexity(artifact, [], [])


def test_summarise_generations_reports_every_round_metric():
    metrics = summarise_generations(
        responses=["a b", "a c"],
        has_eos=[True, False],
        response_lengths=[2, 4],
        labels=[OK, BAD],
        rewards=torch.tensor([1.0, 2.0]),
    )
    assert metrics == {
        "reward_mean": 1.5,
        "violation_rate": 0.5,
        "distinct_1": 0.75,
        "distinct_2": 1.0,
        "length_mean": 3.0,
        "length_std": 1.0,
        "eos_rate": 0.5,
    }
    assert set(metrics) == set(BehaviourSnapshot.__dataclass_fields__)
    with pytest.raises(ValueError, match="differ in length"):
        summarise_generations(["a"], [True], [1], [OK], [1.0, 2.0])
