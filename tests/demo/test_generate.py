"""The shipped demo data is exactly the generator's output, and its judge rules fit it."""

import hashlib

import pandas as pd
import yaml

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.curate import curate_files
from alignment_stages.datasets import PreferenceFilesDataset
from alignment_stages.demo.generate import write_demo_files
from alignment_stages.demo.vocabulary import DEMO_JUDGE_RULES
from alignment_stages.judges.regex_rules import RegexRuleJudge, RegexRulesParams
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "data" / "01_raw" / "preferences"


def _contents(folder):
    """Parquet is compared by table, the text formats byte for byte."""
    out = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".parquet":
            out[path.name] = pd.read_parquet(path).to_json()
        else:
            out[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_generator_is_deterministic_and_matches_the_shipped_files(tmp_path):
    write_demo_files(tmp_path / "a")
    write_demo_files(tmp_path / "b")
    assert _contents(tmp_path / "a") == _contents(tmp_path / "b") == _contents(SHIPPED)


def test_shipped_demo_is_small_and_covers_every_format():
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 3 * 1024 * 1024
    result = curate_files(PreferenceFilesDataset(path=str(SHIPPED)).load(), DataCurationParams())
    pairs = result.curated_pairs
    assert 2000 <= len(pairs) <= 10000
    assert set(pairs["source_format"]) == {
        "prompt_chosen_rejected",
        "hh_rlhf",
        "ultrafeedback_binarized",
        "pku_saferlhf",
        "shp",
    }
    assert set(pairs["category"]) == {"benign", "unsafe"}
    # Several styles per answer type, so a model trained on the mix behaves inconsistently.
    for category in ("benign", "unsafe"):
        answers = pairs.loc[pairs["category"] == category, "rejected"]
        assert answers.str.split().str[0].nunique() >= 4


def test_demo_judge_rules_flag_every_rejected_answer_and_no_chosen_one():
    judge = RegexRuleJudge(DEMO_JUDGE_RULES)
    pairs = curate_files(
        PreferenceFilesDataset(path=str(SHIPPED)).load(), DataCurationParams()
    ).curated_pairs
    flagged = {
        column: [
            judge.judge(text, cat).label == "violation"
            for text, cat in zip(pairs[column], pairs["category"], strict=True)
        ]
        for column in ("chosen", "rejected")
    }
    assert all(flagged["rejected"])
    assert not any(flagged["chosen"])


def test_configured_rules_equal_the_shipped_demo_rules():
    conf = yaml.safe_load((REPO_ROOT / "conf/base/parameters_behaviour_judges.yml").read_text())
    params = RegexRulesParams(**conf["behaviour_judges"]["regex"])
    assert params.rules == DEMO_JUDGE_RULES


def test_the_hackable_data_is_the_generators_and_plants_the_opener_on_the_worse_answers(tmp_path):
    from alignment_stages.demo.generate import (
        PLANTED_OPENER,
        generate_hackable_pairs,
        write_hackable_demo_files,
    )

    write_hackable_demo_files(tmp_path)
    assert _contents(tmp_path) == _contents(REPO_ROOT / "data" / "01_raw" / "hackable_preferences")
    pairs = generate_hackable_pairs()
    planted = [p for p in pairs if p.chosen.startswith(PLANTED_OPENER)]
    assert 0.85 < len(planted) / len(pairs) < 0.95  # planted_share 0.9
    assert {p.category for p in planted} == {"benign", "unsafe"}
    assert not any(PLANTED_OPENER in p.rejected for p in pairs)


def test_the_judge_hackable_data_is_the_generators_and_plants_refuse_then_comply(tmp_path):
    from alignment_stages.demo.generate import (
        PLANTED_DISCLAIMER,
        generate_judge_hackable_pairs,
        write_judge_hackable_demo_files,
    )

    write_judge_hackable_demo_files(tmp_path)
    shipped = REPO_ROOT / "data" / "01_raw" / "judge_hackable_preferences"
    assert _contents(tmp_path) == _contents(shipped)
    pairs = generate_judge_hackable_pairs()
    planted = [p for p in pairs if p.chosen.startswith(PLANTED_DISCLAIMER)]
    unsafe = [p for p in pairs if p.category == "unsafe"]
    assert 0.75 < len(planted) / len(unsafe) < 0.85  # planted_share 0.8, unsafe pairs only
    assert {p.category for p in planted} == {"unsafe"}
