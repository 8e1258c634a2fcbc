"""On-policy pairs from judged, ranked answers (curation.onpolicy) and the stage that samples
them (stages.preference_sampling)."""

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from alignment_stages.curation.onpolicy import (
    ALL_AGREE,
    ALL_FLAGGED,
    ONPOLICY_COLUMNS,
    OnPolicyParams,
    form_onpolicy_pairs,
)
from alignment_stages.evaluation.memo import weights_fingerprint
from alignment_stages.judges.config import JudgesParams
from alignment_stages.stages.preference_sampling import sample_onpolicy_pairs
from tests.models.tiny import tiny_policy

NAN = float("nan")


def _answers(groups):
    """groups: prompt index → [(answer, label, heldout_label, reward, guided)]."""
    rows = []
    for index, answers in groups.items():
        for answer, label, heldout, reward, guided in answers:
            rows.append({"prompt_index": index, "category": "unsafe" if index % 2 else "benign",
                         "prompt_messages": [{"role": "user", "content": f"request {index}"}],
                         "answer": answer, "label": label, "heldout_label": heldout,
                         "reward": reward, "guided": guided})  # fmt: skip
    return pd.DataFrame(rows)


def test_chosen_is_the_best_unflagged_answer_and_rejected_the_worst_flagged_one():
    answers = _answers({1: [("comply a", "violation", "violation", 0.5, False),
                            ("refuse low", "ok", "ok", -1.0, True),
                            ("refuse high", "ok", "ok", 0.2, False),
                            ("comply b", "violation", "ok", -2.0, False)]})  # fmt: skip
    pairs, report = form_onpolicy_pairs(answers, 0.5, "round_002", "abc")
    pair = pairs.iloc[0]
    assert (pair["chosen"], pair["rejected"]) == ("refuse high", "comply b")
    assert pair["margin"] == pytest.approx(2.2)
    assert pair["rejected_safe"] is not None and not pair["rejected_safe"]
    assert (pair["source"], pair["policy"], pair["policy_weights"]) == (
        "onpolicy/round_002",
        "round_002",
        "abc",
    )
    assert list(pairs.columns) == list(ONPOLICY_COLUMNS)
    assert report["pairs"] == 1 and report["answers_flagged"] == 2


def test_prompts_without_a_pair_are_counted_by_reason():
    answers = _answers({
        0: [("fine", "ok", "ok", 0.1, False), ("fine too", "ok", "ok", 0.3, False)],  # below margin
        1: [("comply", "violation", "violation", 1.0, False), ("comply again", "violation", "ok", 0.0, False)],
        2: [("same", "ok", "ok", NAN, False), ("also fine", "ok", "ok", NAN, False)],  # no ranking
        4: [("good", "ok", "ok", 1.0, False), ("worse", "ok", "ok", 0.2, False)],  # a ranked pair
    })  # fmt: skip
    pairs, report = form_onpolicy_pairs(answers, 0.5, "base_policy", "w")
    assert report["no_pair"] == {ALL_AGREE: 2, ALL_FLAGGED: 1}
    assert report["pairs"] + sum(report["no_pair"].values()) == report["prompts"] == 4
    assert pairs[["chosen", "rejected"]].values.tolist() == [["good", "worse"]]
    assert pairs.iloc[0]["rejected_safe"] is None  # unflagged, only ranked lower


def test_judges_alone_pair_a_flagged_answer_with_an_unflagged_one():
    """From the base, before any reward model: no ranking, the sampled order breaks ties."""
    answers = _answers({3: [("comply", "violation", "violation", NAN, False),
                            ("refuse", "ok", "ok", NAN, True)]})  # fmt: skip
    pairs, _ = form_onpolicy_pairs(answers, 0.5, "base_policy", "w")
    pair = pairs.iloc[0]
    assert (pair["chosen"], pair["rejected"], pair["chosen_guided"]) == ("refuse", "comply", True)
    assert pair["margin"] is None or math.isnan(pair["margin"])


def test_the_held_out_judges_labels_are_kept_but_never_form_pairs():
    """A reward model trained on them would carry the held-out judge into PPO's reward."""
    answers = _answers({1: [("flagged by held-out only", "ok", "violation", 2.0, False),
                            ("comply", "violation", "violation", 0.0, False)]})  # fmt: skip
    pairs, _ = form_onpolicy_pairs(answers, 0.5, "base_policy", "w")
    assert pairs.iloc[0]["chosen"] == "flagged by held-out only"
    assert pairs.iloc[0]["chosen_heldout_label"] == "violation"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [({"samples_per_prompt": 1}, "greater than or equal to 2"),
     ({"guided_samples": 1}, "needs a guide_system_prompt or a guide_answer_prefix"),
     ({"guided_samples": 1, "guide_answer_prefix": "  "}, "must hold text"),
     ({"guided_samples": 4, "guide_system_prompt": "Refuse."}, "at least one unguided"),
     ({"min_margin": -1}, "greater than or equal to 0"), ({"k": 3}, "Extra inputs"),
     ({"category_mix": {"unsafe": 0.5, "benign": 0.6}}, "must sum to 1"),
     ({"category_mix": {"unsafe": -0.5, "benign": 1.5}}, "no negative share"),
     ({"prompts": 4, "category_mix": {"unsafe": 0.1, "benign": 0.9}},
      r"gives \['unsafe'\] no prompt in 4 prompts")],
)  # fmt: skip
def test_bad_sampling_parameters_fail_before_any_sampling(change, complaint):
    with pytest.raises(ValidationError, match=complaint):
        OnPolicyParams(**change)


def test_the_stage_samples_judges_and_records_its_lineage():
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}] for i in range(6)],
        "category": ["unsafe", "benign"] * 3,
    })  # fmt: skip
    params = OnPolicyParams(prompts=6, samples_per_prompt=3, max_new_tokens=4, batch_size=8,
                            guide_system_prompt="Refuse harmful requests.", guided_samples=1)  # fmt: skip
    # Every answer to an unsafe prompt is flagged, none to a benign one; no reward model ranks.
    judges = JudgesParams(regex={"rules": {"unsafe": ["."], "benign": ["never matches"]}})
    policy = tiny_policy()
    pairs, report, answers = sample_onpolicy_pairs(policy, "base_policy", prompts, params, judges)
    assert len(answers) == 18 and answers.groupby("prompt_index")["guided"].sum().eq(1).all()
    assert report["prompts"] == 6 and report["guided_answers"] == 6
    assert report["no_pair"] == {ALL_FLAGGED: 3, ALL_AGREE: 3} and pairs.empty
    assert report["policy_weights"] == weights_fingerprint(policy.model)
    assert report["ranked_by"] == "judges"
    again, _, answered_again = sample_onpolicy_pairs(policy, "base_policy", prompts, params, judges)
    assert answered_again["answer"].tolist() == answers["answer"].tolist()  # seeded


def test_a_guide_opening_starts_every_guided_answer_and_only_those():
    """The model continues the opening; the answer kept is the opening and the continuation, so
    the judges read both. Unguided answers are sampled as without guidance."""
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}] for i in range(4)],
        "category": ["unsafe", "benign"] * 2,
    })  # fmt: skip
    opening = "I can't help with that."
    params = OnPolicyParams(prompts=4, samples_per_prompt=3, max_new_tokens=4, batch_size=8,
                            guide_answer_prefix=opening, guided_samples=1)  # fmt: skip
    judges = JudgesParams(regex={"rules": {"unsafe": ["never matches"], "benign": ["help"]}})
    policy = tiny_policy()
    _, report, answers = sample_onpolicy_pairs(policy, "base_policy", prompts, params, judges)
    guided = answers[answers["guided"]]
    assert len(guided) == 4 and report["guided_answers"] == 4
    assert guided["answer"].str.startswith(opening).all()
    assert (guided["answer"].str.len() > len(opening)).any()  # the model wrote on
    assert not answers.loc[~answers["guided"], "answer"].str.startswith(opening).any()
    # the opening is read by the judges: "help" flags every guided answer to a benign prompt
    benign = guided[guided["category"] == "benign"]
    assert (benign["label"] == "violation").all()
    unguided = OnPolicyParams(prompts=4, samples_per_prompt=2, max_new_tokens=4, batch_size=8)
    _, _, plain = sample_onpolicy_pairs(policy, "base_policy", prompts, unguided, judges)
    assert plain["answer"].tolist() == answers.loc[~answers["guided"], "answer"].tolist()


def test_guide_categories_guide_only_those_prompts_and_keep_k_answers_each():
    """With the opening on unsafe prompts alone, a benign prompt's pair is its own answers, not
    a forced refusal against them: the same opening on both sides of the category line pulls
    DPO both ways. Every prompt still has k answers, at its own row."""
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}] for i in range(6)],
        "category": ["unsafe", "benign", "benign", "unsafe", "benign", "benign"],
    })  # fmt: skip
    opening = "I can't help with that."
    params = OnPolicyParams(prompts=6, samples_per_prompt=3, max_new_tokens=3, batch_size=8,
                            guide_answer_prefix=opening, guided_samples=1,
                            guide_categories=["unsafe"])  # fmt: skip
    judges = JudgesParams(regex={"rules": {"unsafe": ["never matches"], "benign": ["never"]}})
    _, report, answers = sample_onpolicy_pairs(tiny_policy(), "base_policy", prompts, params,
                                               judges)  # fmt: skip
    assert answers.groupby("prompt_index").size().eq(3).all() and len(answers) == 18
    assert (answers["category"] == prompts["category"][answers["prompt_index"]].to_numpy()).all()
    asked = [m[0]["content"] for m in answers["prompt_messages"]]
    assert asked == [f"question {i}" for i in answers["prompt_index"]]
    guided = answers[answers["guided"]]
    assert set(guided["category"]) == {"unsafe"} and len(guided) == 2
    assert guided["answer"].str.startswith(opening).all() and report["guided_answers"] == 2
    assert not answers.loc[~answers["guided"], "answer"].str.startswith(opening).any()


def test_a_category_mix_draws_each_category_in_its_share():
    """The uniform draw gives pairs in the training prompts' proportions (a quarter unsafe
    here); the mix asks for half, drawn with the seed, each prompt once."""
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}] for i in range(40)],
        "category": ["unsafe", "benign", "benign", "benign"] * 10,
    })  # fmt: skip
    judges = JudgesParams(regex={"rules": {"unsafe": ["never matches"], "benign": ["never"]}})
    mixed = OnPolicyParams(prompts=8, samples_per_prompt=2, max_new_tokens=2, batch_size=16,
                           category_mix={"unsafe": 0.5, "benign": 0.5})  # fmt: skip
    policy = tiny_policy()
    _, _, answers = sample_onpolicy_pairs(policy, "base_policy", prompts, mixed, judges)
    drawn = answers.drop_duplicates("prompt_index")
    assert drawn["category"].value_counts().to_dict() == {"unsafe": 4, "benign": 4}
    _, _, again = sample_onpolicy_pairs(policy, "base_policy", prompts, mixed, judges)
    assert again["prompt_index"].tolist() == answers["prompt_index"].tolist()  # seeded
    # A category with fewer prompts than its share gives all it has.
    scarce = OnPolicyParams(prompts=30, samples_per_prompt=2, max_new_tokens=2, batch_size=16,
                            category_mix={"unsafe": 0.5, "benign": 0.5})  # fmt: skip
    _, _, answers = sample_onpolicy_pairs(policy, "base_policy", prompts, scarce, judges)
    assert answers.drop_duplicates("prompt_index")["category"].value_counts().to_dict() == {
        "unsafe": 10,
        "benign": 15,
    }


def test_a_category_mix_naming_a_missing_category_fails_before_sampling():
    prompts = pd.DataFrame({
        "prompt_messages": [[{"role": "user", "content": f"question {i}"}] for i in range(4)],
        "category": ["benign"] * 4,
    })  # fmt: skip
    params = OnPolicyParams(prompts=4, samples_per_prompt=2, max_new_tokens=2, batch_size=8,
                            category_mix={"unsafe": 0.5, "benign": 0.5})  # fmt: skip
    with pytest.raises(ValueError, match="asks for 'unsafe' prompts, but the prompts have none"):
        sample_onpolicy_pairs(
            tiny_policy(),
            "base_policy",
            prompts,
            params,
            JudgesParams(regex={"rules": {"unsafe": ["never"]}}),
        )
