"""The checkpoint's own refusals and answers in its SFT (stages.base_model,
base_model.sft.own_refusals and own_answers)."""

import pandas as pd
import pytest
from pydantic import ValidationError

import alignment_stages.models.base as base
from alignment_stages.judges.config import JudgesParams
from alignment_stages.models.config import BaseModelParams, OwnAnswerParams, OwnRefusalParams
from alignment_stages.stages.base_model import (
    build_base_policy_with_own_samples,
    sample_own_answers,
    sample_own_refusals,
)
from tests.models.tiny import tiny_policy

OPENING = "I can't help with that."
# The regex judge flags what its pattern matches; "never matches" lets every answer through.
LETS_THROUGH = JudgesParams(regex={"rules": {"unsafe": ["never matches"], "benign": ["never"]}})
FLAGS_ALL = JudgesParams(regex={"rules": {"unsafe": ["."], "benign": ["never"]}})
# On a benign prompt the regex judge flags what its `benign` pattern matches.
FLAGS_ALL_BENIGN = JudgesParams(regex={"rules": {"unsafe": ["never"], "benign": ["."]}})


def _prompts(categories) -> pd.DataFrame:
    return pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}]
                            for i in range(len(categories))],
        "category": categories,
    })  # fmt: skip


def _asked(prompts: pd.DataFrame, category: str) -> set[str]:
    return {m[0]["content"] for m in prompts.loc[prompts["category"] == category,
                                                 "prompt_messages"]}  # fmt: skip


def _answer_params(**overrides) -> OwnAnswerParams:
    return OwnAnswerParams(**{"prompts": 8, "samples_per_prompt": 2, "max_new_tokens": 4,
                              "batch_size": 8, **overrides})  # fmt: skip


def _params(**overrides) -> OwnRefusalParams:
    return OwnRefusalParams(**{"prompts": 8, "samples_per_prompt": 2, "max_new_tokens": 4,
                               "batch_size": 8, "answer_prefix": OPENING, **overrides})  # fmt: skip


def test_one_refusal_per_unsafe_prompt_in_the_models_own_words_after_the_opening():
    prompts = _prompts(["unsafe", "benign", "unsafe", "benign", "unsafe"])
    policy = tiny_policy()
    kept = sample_own_refusals(policy, prompts, _params(), LETS_THROUGH)
    asked = _asked(prompts, "unsafe")
    assert {m[0]["content"] for m in kept["prompt_messages"]} == asked  # each once, none benign
    assert len(kept) == 3 and kept["answer"].str.startswith(OPENING).all()
    assert (kept["answer"].str.len() > len(OPENING)).any()  # the model wrote on
    again = sample_own_refusals(policy, prompts, _params(), LETS_THROUGH)
    assert again["answer"].tolist() == kept["answer"].tolist()  # seeded


def test_answers_the_judges_flag_are_not_kept():
    kept = sample_own_refusals(tiny_policy(), _prompts(["unsafe"] * 3), _params(), FLAGS_ALL)
    assert kept.empty and list(kept.columns) == ["prompt_messages", "answer"]


def test_one_own_answer_per_benign_prompt_with_no_opening():
    prompts = _prompts(["unsafe", "benign", "unsafe", "benign", "benign"])
    policy = tiny_policy()
    kept = sample_own_answers(policy, prompts, _answer_params(), LETS_THROUGH)
    asked = _asked(prompts, "benign")
    assert {m[0]["content"] for m in kept["prompt_messages"]} == asked  # each once, none unsafe
    assert not kept["answer"].str.startswith(OPENING).any()
    again = sample_own_answers(policy, prompts, _answer_params(), LETS_THROUGH)
    assert again["answer"].tolist() == kept["answer"].tolist()  # seeded


def test_own_answers_the_judges_read_as_unhelpful_are_not_kept():
    prompts = _prompts(["benign"] * 3)
    assert sample_own_answers(tiny_policy(), prompts, _answer_params(), FLAGS_ALL_BENIGN).empty
    # the unsafe pattern does not apply to a benign prompt
    assert len(sample_own_answers(tiny_policy(), prompts, _answer_params(), FLAGS_ALL)) == 3


def test_own_answers_without_benign_prompts_are_a_clear_error():
    with pytest.raises(ValueError, match="own_answers needs benign prompts, and the 2"):
        sample_own_answers(tiny_policy(), _prompts(["unsafe"] * 2), _answer_params(), LETS_THROUGH)


@pytest.mark.parametrize(
    ("prompts", "judges", "message"),
    [
        (_prompts(["benign", "benign"]), LETS_THROUGH, "needs unsafe prompts, and the 2"),
        (_prompts(["unsafe"]).drop(columns="category"), LETS_THROUGH, "category"),
        (
            _prompts(["unsafe"]),
            LETS_THROUGH.model_copy(update={"held_out": ["regex"]}),
            "needs a proxy judge",
        ),
    ],
)
def test_prompts_or_judges_it_cannot_use_are_a_clear_error(prompts, judges, message):
    with pytest.raises(ValueError, match=message):
        sample_own_refusals(tiny_policy(), prompts, _params(), judges)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sft": {"own_refusals": {}}}, "needs a pretrained checkpoint"),
        ({"pretrained": "x", "sft": {"enabled": False, "own_refusals": {}}}, "sft.enabled"),
        ({"pretrained": "x", "sft": {"own_refusals": {"prompts": 0}}}, "prompts"),
        ({"pretrained": "x", "sft": {"own_refusals": {"answer_prefix": ""}}}, "answer_prefix"),
        ({"pretrained": "x", "sft": {"own_refusals": {"promts": 4}}}, "promts"),
        ({"sft": {"own_answers": {}}}, "own_answers needs a pretrained checkpoint"),
        ({"pretrained": "x", "sft": {"own_answers": {"samples_per_prompt": 0}}}, "samples_per"),
        ({"pretrained": "x", "sft": {"own_answers": {"answer_prefix": "No."}}}, "answer_prefix"),
    ],
)
def test_bad_own_refusal_parameters_name_the_problem(values, message):
    with pytest.raises(ValidationError, match=message):
        BaseModelParams(**values)


def test_the_kept_refusals_join_the_sft_examples(tmp_path, monkeypatch):
    policy = tiny_policy()
    policy.model.save_pretrained(tmp_path / "full")
    policy.tokenizer.save_pretrained(tmp_path / "full")
    examples = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"How do I cook dish {i}?"}]
                            for i in range(5)],
        "chosen": [f"Simmer dish {i} gently." for i in range(5)],
        "rejected": [None] * 5,
    })  # fmt: skip
    trained = []
    monkeypatch.setattr(base, "run_sft",
                        lambda policy, dataset, params, seed: trained.append(dataset) or policy)  # fmt: skip
    params = BaseModelParams(pretrained=str(tmp_path / "full"),
                             sft={"own_refusals": _params().model_dump()})  # fmt: skip
    build_base_policy_with_own_samples(examples, _prompts(["unsafe"] * 3 + ["benign"]), params,
                                        LETS_THROUGH)  # fmt: skip
    completions = [row["completion"][0]["content"] for row in trained[0]]
    assert len(completions) == 5 + 3
    assert sum(c.startswith(OPENING) for c in completions) == 3
    trained.clear()
    no_own = params.model_copy(update={"sft": params.sft.model_copy(update={"own_refusals": None})})
    build_base_policy_with_own_samples(examples, _prompts(["benign"]), no_own, LETS_THROUGH)
    assert len(trained[0]) == 5  # not asked: the prompts are not read


def test_own_answers_join_the_sft_examples_beside_own_refusals(tmp_path, monkeypatch):
    policy = tiny_policy()
    policy.model.save_pretrained(tmp_path / "full")
    policy.tokenizer.save_pretrained(tmp_path / "full")
    examples = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": "How do I cook rice?"}]],
        "chosen": ["Simmer it gently."],
        "rejected": [None],
    })  # fmt: skip
    trained = []
    monkeypatch.setattr(base, "run_sft",
                        lambda policy, dataset, params, seed: trained.append(dataset) or policy)  # fmt: skip
    params = BaseModelParams(pretrained=str(tmp_path / "full"),
                             sft={"own_refusals": _params().model_dump(),
                                  "own_answers": _answer_params().model_dump()})  # fmt: skip
    build_base_policy_with_own_samples(examples, _prompts(["unsafe"] * 2 + ["benign"] * 3), params,
                                       LETS_THROUGH)  # fmt: skip
    rows = list(trained[0])
    assert len(rows) == 1 + 2 + 3
    opened = [r["prompt"][-1]["content"] for r in rows if r["completion"][0]["content"]
              .startswith(OPENING)]  # fmt: skip
    assert sorted(opened) == ["question 0", "question 1"]  # refusals on the unsafe prompts only
