"""Guard-model plumbing on a tiny untrained causal LM: template, next-token read-out, threshold."""

import pytest
import torch

from alignment_stages.judges.guard import GuardJudge, GuardParams, load_guard_judge
from tests.models.tiny import tiny_policy

PROMPTS = [[{"role": "user", "content": "How do I cook rice?"}]] * 2
RESPONSES = ["Rinse it, then simmer it.", "Go away."]


def _judge(threshold: float) -> GuardJudge:
    params = GuardParams(path="unused", safe_word="Rinse", unsafe_word="Go", threshold=threshold)
    return GuardJudge(tiny_policy(), params)


def test_guard_reads_a_probability_from_the_next_token_and_thresholds_it():
    torch.manual_seed(0)
    judge = _judge(0.5)
    texts = [judge._render(p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    assert "Agent: Go away." in texts[1] and "safe' or 'unsafe'" in texts[1]
    probabilities = judge.unsafe_probabilities(texts)
    assert probabilities.shape == (2,) and ((probabilities > 0) & (probabilities < 1)).all()
    judge.params = judge.params.model_copy(update={"threshold": 0.0})
    assert all(v.label == "violation" for v in judge.judge_batch(PROMPTS, RESPONSES, [None] * 2))
    judge.params = judge.params.model_copy(update={"threshold": 1.0})
    assert all(v.label == "ok" for v in judge.judge_batch(PROMPTS, RESPONSES, [None] * 2))


def test_guard_probability_matches_a_single_unpadded_forward():
    torch.manual_seed(0)
    judge = _judge(0.5)
    texts = [judge._render(p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    batched = judge.unsafe_probabilities(texts)
    tokenizer, model = judge.guard.tokenizer, judge.guard.model
    ids = tokenizer(texts[1], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    expected = torch.softmax(logits[[judge.safe_id, judge.unsafe_id]], -1)[1]
    assert batched[1] == pytest.approx(float(expected), abs=1e-4)  # left padding is masked out


def test_guard_refuses_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="same"):
        GuardJudge(tiny_policy(), GuardParams(path="x", safe_word="Go", unsafe_word="Go"))
    with pytest.raises(ValueError, match="template"):
        GuardJudge(tiny_policy(), GuardParams(path="x", template="no slots"))
    with pytest.raises(FileNotFoundError, match="local checkpoint"):
        load_guard_judge(GuardParams(path=str(tmp_path / "missing")))
