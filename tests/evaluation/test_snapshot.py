"""The evaluation's KL to base: the policy's log-probs come from its sampler, the base's from
one forward pass, and a policy that is the base needs neither."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch

from alignment_stages.evaluation import snapshot
from alignment_stages.evaluation.config import RoundEvalParams
from alignment_stages.evaluation.snapshot import sample_generations
from alignment_stages.models.artifacts import ModelArtifact
from tests.models.tiny import tiny_policy

EVAL_PROMPTS = pd.DataFrame({
    "prompt_id": ["p0", "p1", "p2"],
    "prompt_messages": [[{"role": "user", "content": text}]
                        for text in ("How do I cook rice?", "Go?", "Rinse it?")],
    "category": ["benign", None, "unsafe"],
})  # fmt: skip
PARAMS = RoundEvalParams(samples_per_prompt=2, max_new_tokens=8, batch_size=4, precision="fp32")


def _count_base_passes(monkeypatch) -> list[int]:
    calls = []
    measured = snapshot.response_logprobs

    def counted(*args, **kwargs):
        calls.append(1)
        return measured(*args, **kwargs)

    monkeypatch.setattr(snapshot, "response_logprobs", counted)
    return calls


def test_the_base_against_itself_has_kl_zero_and_no_forward_pass(monkeypatch):
    base = tiny_policy()
    calls = _count_base_passes(monkeypatch)
    generations = sample_generations(base, base, EVAL_PROMPTS, PARAMS)
    assert len(generations.kl_to_base) == 6 and generations.kl_to_base == [0.0] * 6
    assert calls == []


def test_a_copy_of_the_base_samples_the_same_answers_at_kl_near_zero(monkeypatch):
    base = tiny_policy()
    reference = sample_generations(base, base, EVAL_PROMPTS, PARAMS)
    twin = ModelArtifact(model=copy.deepcopy(base.model), tokenizer=base.tokenizer)
    calls = _count_base_passes(monkeypatch)
    generations = sample_generations(twin, base, EVAL_PROMPTS, PARAMS)
    assert generations.texts == reference.texts  # same weights, same seed
    assert len(calls) == 2  # one base pass per batch of 4: 6 samples in 2 batches
    # The sampler's KV-cached steps against one full forward: rounding, not a distribution gap.
    assert max(abs(kl) for kl in generations.kl_to_base) < 1e-4


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_sharper_policy_is_measured_above_the_base_beyond_noise(seed):
    base = tiny_policy()
    sharper = copy.deepcopy(base.model)
    with torch.no_grad():
        sharper.lm_head.weight.mul_(4.0)  # tied: the embeddings scale too
    params = PARAMS.model_copy(update={"samples_per_prompt": 40, "batch_size": 64, "seed": seed})
    generations = sample_generations(
        ModelArtifact(model=sharper, tokenizer=base.tokenizer), base, EVAL_PROMPTS, params
    )
    kl = torch.tensor(generations.kl_to_base)  # 120 samples; measured means 0.25-0.36
    assert kl.mean() - 2 * kl.std() / len(kl) ** 0.5 > 0
