"""The backbone probe: a logistic regression on a pretrained checkpoint's pooled features,
reading request and answer together, saved and loaded as an ordinary sequence classifier."""

import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from sklearn.linear_model import LogisticRegression

from alignment_stages.judges.backbone_probe import (
    BackboneProbeParams,
    fit_logistic,
    pooled_features,
    probe_from_checkpoint,
)
from alignment_stages.judges.classifier import (
    ClassifierJudge,
    LearnedJudgeParams,
    load_classifier_judge,
)
from alignment_stages.judges.learned import (
    LabelledTexts,
    SafetyJudgeParams,
    refusal_wrapped,
    train_safety_classifier,
)
from alignment_stages.models.artifacts import load_artifact, save_artifact
from alignment_stages.models.config import TinyModelParams
from alignment_stages.models.tiny import build_tiny_causal_lm, train_tokenizer

WORDS = ["How do I bake a cake?", "How do I build a bomb?", "Here it is: mix and heat.",
         "I can't help with that.", "Sure, step one."]  # fmt: skip
TINY = TinyModelParams(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, max_position_embeddings=128)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A two-block checkpoint on disk, as `base_model.pretrained` names one."""
    torch.manual_seed(0)
    tokenizer = train_tokenizer(WORDS * 5, TINY.vocab_size)
    model = build_tiny_causal_lm(tokenizer, TINY)
    directory = tmp_path_factory.mktemp("checkpoint")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


def _params(checkpoint: str, **overrides) -> BackboneProbeParams:
    return BackboneProbeParams(**{"pretrained": checkpoint, "gguf_cache": None, "layers": 1,
                                  "max_prompt_tokens": 16, "max_answer_tokens": 16,
                                  **overrides})  # fmt: skip


def _labelled(n: int) -> pd.DataFrame:
    """The same answer is unsafe after a request for a bomb and safe after one for a cake: a
    judge of the answer alone cannot tell them apart."""
    rows = []
    for i in range(n):
        bomb = i % 2 == 0
        answer = ["Here it is: mix and heat.", "Sure, step one."][i % 4 // 2] + f" ({i})"
        rows.append({"prompt_text": f"How do I build a {'bomb' if bomb else 'cake'}? #{i}",
                     "answer": answer, "label": "harm", "score": 1.0 if bomb else 0.0,
                     "category": "unsafe"})  # fmt: skip
    return pd.DataFrame(rows)


NO_PAIRS = pd.DataFrame(columns=["chosen", "rejected", "chosen_safe", "rejected_safe", "category"])


def test_the_probe_judges_the_answer_by_its_request_and_loads_back(checkpoint, tmp_path):
    params = SafetyJudgeParams(min_examples_per_label=5, backbone=_params(checkpoint))
    probe, metrics = train_safety_classifier(NO_PAIRS, params, _labelled(120))
    assert metrics["n_val"] > 10 and metrics["n_train"] + metrics["n_val"] == 120
    assert metrics["precision"] > 0.9 and metrics["recall"] > 0.9 and metrics["agreement"] > 0.9
    save_artifact(probe, tmp_path / "probe")
    loaded = load_artifact(tmp_path / "probe", "sequence_classification")
    assert loaded.model.config.num_hidden_layers == 1  # only the blocks it reads are kept
    prompts = [[{"role": "user", "content": "How do I build a bomb? #999"}],
               [{"role": "user", "content": "How do I build a cake? #999"}]]  # fmt: skip
    answers = ["Here it is: mix and heat. (999)"] * 2
    before = ClassifierJudge(probe, "unsafe", name="learned").judge_batch(
        prompts, answers, [None] * 2
    )
    # As `behaviour_judges.learned.path` names a saved probe (the `judge` command, a later run).
    judge = load_classifier_judge(LearnedJudgeParams(path=str(tmp_path / "probe")), "learned")
    after = judge.judge_batch(prompts, answers, [None] * 2)
    assert [v.label for v in after] == ["violation", "ok"]
    assert [v.reason for v in after] == [v.reason for v in before]  # the same probabilities


def test_features_do_not_depend_on_what_a_conversation_is_batched_with(checkpoint):
    probe = probe_from_checkpoint(_params(checkpoint))
    prompts, answers = ["How do I bake a cake?", "How do I build a bomb?"], ["Sure.", "Here " * 12]
    together = pooled_features(probe, prompts, answers, 16, 16, batch_size=2)
    alone = torch.cat([pooled_features(probe, [prompt], [answer], 16, 16)
                       for prompt, answer in zip(prompts, answers, strict=True)])  # fmt: skip
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_the_logistic_fit_is_scikit_learns_with_the_same_penalty():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(200, 5, generator=generator) * torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0])
    features += torch.tensor([0.0, 5.0, -1.0, 0.0, 2.0])
    labels = features[:, 0] - 0.3 * features[:, 1] + torch.randn(200, generator=generator) > -1.5
    weight, bias = fit_logistic(features, labels.long().tolist(), weight_decay=0.1)
    mean, std = features.double().mean(0), features.double().std(0)
    # scikit-learn minimises C·Σ log-loss + ½|w|²; ours is mean log-loss + ½·wd·|w|².
    reference = LogisticRegression(C=1 / (0.1 * 200), tol=1e-10, max_iter=10_000)
    reference.fit(((features.double() - mean) / std).numpy(), labels.numpy())
    expected = torch.from_numpy(reference.coef_[0]) / std
    torch.testing.assert_close(weight.double(), expected, atol=1e-3, rtol=1e-3)
    assert bias == pytest.approx(float(reference.intercept_[0] - (expected * mean).sum()), abs=1e-3)


def test_a_probe_head_with_a_setting_missing_is_a_clear_error(checkpoint):
    probe = probe_from_checkpoint(_params(checkpoint))
    probe.model.config.safety_probe = {"pooling": "mean", "bias": [0.0, 0.0]}
    with pytest.raises(ValueError, match=r"lacks \['max_prompt_tokens', 'max_answer_tokens'\]"):
        ClassifierJudge(probe, "unsafe").judge_batch([[]], ["Sure."], [None])


def test_more_layers_than_the_checkpoint_has_is_a_clear_error(checkpoint):
    with pytest.raises(ValueError, match=r"layers=5, but .* has 2 blocks; choose at most 2"):
        probe_from_checkpoint(_params(checkpoint, layers=5))


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="nowhere"):
        probe_from_checkpoint(_params(str(tmp_path / "nowhere")))


@pytest.mark.parametrize(("field", "value"), [("layers", 0), ("max_prompt_tokens", 0),
    ("max_answer_tokens", 0), ("weight_decay", 0), ("batch_size", 0), ("refusal_wrapped", 1.5)])  # fmt: skip
def test_out_of_range_settings_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        BackboneProbeParams(pretrained="x", **{field: value})


def test_unsafe_answers_come_again_behind_a_refusal_from_the_fitted_rows_only():
    examples = LabelledTexts(
        texts=["I can't help with that. It is dangerous.", "Sure: mix and heat.", "Step 1: cut.",
               "Rinse the rice.", "I won't do that.", "Here: pick the lock."],
        labels=[0, 1, 1, 0, 0, 1],
        prompts=["bomb?", "bomb?", "lock?", "rice?", "lock?", "lock?"],
    )  # fmt: skip
    fitted = [0, 1, 2, 3]  # rows 4 and 5 are held out: neither their refusal nor their answer
    wrapped = refusal_wrapped(examples, fitted, share=1.0, seed=0)
    assert wrapped.labels == [1, 1] and wrapped.prompts == ["bomb?", "lock?"]
    # The refusal is the first sentence of a fitted safe answer that reads as one ("Rinse the
    # rice." does not); it opens one answer and closes the next.
    assert wrapped.texts == ["I can't help with that. Sure: mix and heat.",
                             "Step 1: cut. I can't help with that."]  # fmt: skip
    assert refusal_wrapped(examples, fitted, share=0.0, seed=0).texts == []
    assert refusal_wrapped(examples, [1, 2, 3], share=1.0, seed=0).texts == []  # no refusal
