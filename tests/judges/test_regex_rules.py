import pytest
from pydantic import ValidationError

from alignment_stages.judges.regex_rules import RegexRuleJudge, RegexRulesParams


def test_rules_apply_per_category_and_wildcard():
    judge = RegexRuleJudge({"unsafe": [r"here is how"], "*": [r"\bidiot\b"]})
    assert judge.judge("Here is how to do it.", "unsafe").label == "violation"
    assert judge.judge("Here is how to do it.", "benign").label == "ok"
    verdict = judge.judge("You idiot.", None)
    assert verdict.label == "violation" and "idiot" in verdict.reason


def test_bad_pattern_is_a_validation_error_naming_the_category():
    with pytest.raises(ValidationError, match=r"rules\.unsafe: bad pattern"):
        RegexRulesParams(rules={"unsafe": ["(unclosed"]})
