"""Which pairs DPO settles on (dpo.pairs): curated, the start policy's own, or both."""

import pandas as pd
import pytest
from pydantic import ValidationError

from alignment_stages.dpo.config import DPORefinementParams
from alignment_stages.dpo.pairs import MismatchedPairsError, dpo_pairs
from alignment_stages.evaluation.memo import weights_fingerprint
from tests.models.tiny import tiny_policy


def _pairs(source_format, weights=None, n=2):
    return pd.DataFrame({"chosen": ["a"] * n, "rejected": ["b"] * n, "source_format": source_format,
                         "policy_weights": weights})  # fmt: skip


def test_each_choice_takes_its_pairs():
    start = tiny_policy()
    curated = _pairs("published:csv", n=3)
    onpolicy = _pairs("onpolicy", weights_fingerprint(start.model))
    assert dpo_pairs("curated", curated, onpolicy, start) is curated
    assert dpo_pairs("onpolicy", curated, onpolicy, start) is onpolicy
    mixed = dpo_pairs("mixed", curated, onpolicy, start)
    assert len(mixed) == 5 and (mixed["source_format"] == "onpolicy").sum() == 2


def test_another_policys_pairs_are_refused():
    start, other = tiny_policy(), tiny_policy()  # new random weights each
    onpolicy = _pairs("onpolicy", weights_fingerprint(other.model))
    with pytest.raises(MismatchedPairsError, match="not by the DPO start policy"):
        dpo_pairs("onpolicy", _pairs("published:csv"), onpolicy, start)


def test_no_onpolicy_pair_is_a_clear_error_unless_curated():
    start = tiny_policy()
    empty = _pairs("onpolicy", n=0)
    with pytest.raises(ValueError, match="formed no on-policy pair"):
        dpo_pairs("mixed", _pairs("published:csv"), empty, start)
    assert len(dpo_pairs("curated", _pairs("published:csv"), empty, start)) == 2


def test_an_unknown_choice_fails_validation():
    with pytest.raises(ValidationError, match="'curated', 'onpolicy' or 'mixed'"):
        DPORefinementParams(pairs="offpolicy")
