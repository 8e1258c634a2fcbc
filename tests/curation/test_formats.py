"""One detector test and one parser test per source format, plus each parser's bad inputs."""

import copy

import pytest

from alignment_stages.curation.formats import FORMATS, detect_format
from alignment_stages.curation.schema import Reason, RecordError
from tests.curation import samples

RICE_CHOSEN = "Rinse it, then simmer it covered."
RICE_REJECTED = "Figure it out yourself."


@pytest.mark.parametrize(
    ("expected", "record"),
    [(name, record) for name, records in samples.ALL.items() for record in records],
)
def test_detector_recognises_each_format(expected, record):
    assert detect_format([record]) == expected


def test_detector_goes_by_majority_of_the_sample():
    sample = [samples.SHP, samples.SHP, samples.EXPLICIT_TEXT]
    assert detect_format(sample) == "shp"


def test_detector_returns_none_for_unknown_fields():
    assert detect_format([{"question": "q", "answer": "a"}]) is None
    assert detect_format([]) is None


@pytest.mark.parametrize(
    "record",
    [samples.EXPLICIT_TEXT, samples.EXPLICIT_CONVERSATIONAL, samples.TRL_IMPLICIT_PROMPT],
)
def test_prompt_chosen_rejected_parser(record):
    pair = FORMATS["prompt_chosen_rejected"].parse(record)
    assert pair.prompt_messages == [{"role": "user", "content": "How do I cook rice?"}]
    assert (pair.chosen, pair.rejected) == (RICE_CHOSEN, RICE_REJECTED)


def test_hh_rlhf_parser_keeps_multi_turn_history():
    pair = FORMATS["hh_rlhf"].parse(samples.HH_RLHF)
    assert pair.prompt_messages == [
        {"role": "user", "content": "Hi."},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I cook rice?"},
    ]
    assert (pair.chosen, pair.rejected) == (RICE_CHOSEN, RICE_REJECTED)


def test_ultrafeedback_parser_keeps_scores():
    pair = FORMATS["ultrafeedback_binarized"].parse(samples.ULTRAFEEDBACK)
    assert (pair.chosen, pair.rejected) == (RICE_CHOSEN, RICE_REJECTED)
    assert (pair.chosen_score, pair.rejected_score) == (9.0, 2.0)


@pytest.mark.parametrize("better", [0, 1])
def test_pku_parser_follows_better_response_id_and_keeps_safety(better):
    record = dict(samples.PKU_SAFERLHF, better_response_id=better)
    pair = FORMATS["pku_saferlhf"].parse(record)
    assert pair.chosen == record[f"response_{better}"]
    assert pair.rejected == record[f"response_{1 - better}"]
    assert pair.chosen_safe is record[f"is_response_{better}_safe"]
    assert pair.rejected_safe is record[f"is_response_{1 - better}_safe"]


@pytest.mark.parametrize(("label", "chosen_key"), [(1, "human_ref_A"), (0, "human_ref_B")])
def test_shp_parser_reads_labels_scores_and_domain(label, chosen_key):
    record = dict(samples.SHP, labels=label)
    pair = FORMATS["shp"].parse(record)
    assert pair.chosen == record[chosen_key]
    assert pair.chosen_score == record["score_A" if chosen_key == "human_ref_A" else "score_B"]
    assert pair.category == "askculinary"


def _broken(record, **changes):
    broken = copy.deepcopy(record)
    for key, value in changes.items():
        if value is KeyError:
            broken.pop(key)
        else:
            broken[key] = value
    return broken


@pytest.mark.parametrize(
    ("format_name", "record", "reason"),
    [
        (
            "prompt_chosen_rejected",
            _broken(samples.EXPLICIT_TEXT, rejected=KeyError),
            Reason.MISSING_FIELD,
        ),
        ("prompt_chosen_rejected", _broken(samples.EXPLICIT_TEXT, chosen=3), Reason.WRONG_TYPE),
        (
            "prompt_chosen_rejected",
            _broken(samples.EXPLICIT_TEXT, prompt=[{"role": "user"}]),
            Reason.WRONG_TYPE,
        ),
        (
            "prompt_chosen_rejected",
            _broken(samples.EXPLICIT_CONVERSATIONAL, chosen=[{"role": "user", "content": "x"}]),
            Reason.WRONG_TYPE,
        ),
        (
            "prompt_chosen_rejected",
            _broken(
                samples.TRL_IMPLICIT_PROMPT,
                rejected=[
                    {"role": "user", "content": "Other?"},
                    {"role": "assistant", "content": "x"},
                ],
            ),
            Reason.UNPARSEABLE_TRANSCRIPT,
        ),
        (
            "hh_rlhf",
            _broken(samples.HH_RLHF, chosen="just some text"),
            Reason.UNPARSEABLE_TRANSCRIPT,
        ),
        (
            "hh_rlhf",
            _broken(samples.HH_RLHF, chosen="\n\nHuman: Hi.\n\nAssistant: Hello!\n\nHuman: More?"),
            Reason.UNPARSEABLE_TRANSCRIPT,
        ),
        (
            "hh_rlhf",
            _broken(samples.HH_RLHF, rejected="\n\nHuman: Other.\n\nAssistant: No."),
            Reason.UNPARSEABLE_TRANSCRIPT,
        ),
        ("hh_rlhf", _broken(samples.HH_RLHF, chosen=["not", "text"]), Reason.WRONG_TYPE),
        (
            "ultrafeedback_binarized",
            _broken(samples.ULTRAFEEDBACK, score_chosen="high"),
            Reason.WRONG_TYPE,
        ),
        (
            "ultrafeedback_binarized",
            _broken(samples.ULTRAFEEDBACK, score_rejected=KeyError),
            Reason.MISSING_FIELD,
        ),
        ("pku_saferlhf", _broken(samples.PKU_SAFERLHF, better_response_id=2), Reason.WRONG_TYPE),
        (
            "pku_saferlhf",
            _broken(samples.PKU_SAFERLHF, is_response_0_safe="yes"),
            Reason.WRONG_TYPE,
        ),
        ("pku_saferlhf", _broken(samples.PKU_SAFERLHF, response_1=KeyError), Reason.MISSING_FIELD),
        ("shp", _broken(samples.SHP, labels=None), Reason.MISSING_FIELD),
        ("shp", _broken(samples.SHP, labels=True), Reason.WRONG_TYPE),
    ],
)
def test_parsers_raise_the_quarantine_reason(format_name, record, reason):
    with pytest.raises(RecordError) as caught:
        FORMATS[format_name].parse(record)
    assert caught.value.reason is reason
    assert caught.value.detail
