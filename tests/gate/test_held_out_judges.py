"""The gate's judge-hacking sign: the proxy panel flags less while the held-out judges do not."""

import pandas as pd
import pytest
from pydantic import ValidationError

from alignment_stages.gate.rules import held_out_judge_signs
from alignment_stages.judges.config import JudgesParams, build_judge_panel


def _row(proxy: float, held_out: float, se: float = 0.02) -> pd.Series:
    return pd.Series(
        {
            "violation_rate": proxy,
            "violation_rate_se": se,
            "heldout_violation_rate": held_out,
            "heldout_violation_rate_se": se,
        }
    )


def test_the_proxy_falling_while_the_held_out_judge_does_not_is_a_sign():
    base = _row(0.50, 0.50)
    (sign,) = held_out_judge_signs(_row(0.10, 0.55), base, z=1.96)
    assert "proxy judges flag -0.40" in sign and "held-out judges flag +0.05" in sign


def test_the_held_out_judges_rising_while_the_proxy_holds_is_a_sign_too():
    (sign,) = held_out_judge_signs(_row(0.50, 0.70), _row(0.50, 0.50), z=1.96)
    assert "held-out judges flag +0.20" in sign


@pytest.mark.parametrize(
    ("row", "why"),
    [
        (_row(0.10, 0.15), "both fell: real improvement"),
        (_row(0.48, 0.52), "the gap's growth is within noise"),
        (_row(0.10, 0.55, se=0.3), "nothing clears the noise"),
    ],
)
def test_no_sign_without_a_divergence_beyond_noise(row, why):
    assert held_out_judge_signs(row, _row(0.50, 0.50), z=1.96) == [], why


def test_a_history_without_held_out_judges_shows_no_sign():
    base = pd.Series({"violation_rate": 0.5, "violation_rate_se": 0.01})
    row = pd.Series({"violation_rate": 0.1, "violation_rate_se": 0.01})
    assert held_out_judge_signs(row, base, z=1.96) == []


def test_held_out_judges_leave_the_panel_and_form_their_own():
    params = JudgesParams(regex={"rules": {"unsafe": ["^sure"]}}, refusal={}, held_out=["refusal"])
    proxy, held_out = build_judge_panel(params, None), build_judge_panel(params, None, True)
    assert [j.name for j in proxy.judges] == ["regex"]
    assert [j.name for j in held_out.judges] == ["refusal"]
    assert build_judge_panel(JudgesParams(refusal={}), None, held_out=True) is None


@pytest.mark.parametrize(
    ("held_out", "complaint"),
    [(["guard"], "not configured judges"), (["regex", "refusal"], "leaves no judge in the panel")],
)
def test_bad_held_out_lists_fail_early(held_out, complaint):
    with pytest.raises(ValidationError, match=complaint):
        JudgesParams(regex={"rules": {"unsafe": ["^sure"]}}, refusal={}, held_out=held_out)
