"""The published sets `conf/smollm2` reads, from the installed packages of the lock's
`published-data` extra: every set is read and accounted for, and no evaluation prompt is in any
training split, by exact match or by an independent near-duplicate measure."""

from __future__ import annotations

import re
import tomllib
from collections import defaultdict

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from alignment_stages.curation.config import DataCurationParams
from alignment_stages.curation.normalise import identity_text
from alignment_stages.curation.published import curate_all
from alignment_stages.curation.splits import (
    EVALUATION_SPLITS,
    TRAINING_SPLITS,
    add_published,
    check_eval_disjoint,
    split_by_prompt_group,
)
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def curated():
    conf = yaml.safe_load((REPO_ROOT / "conf/smollm2/parameters_data_curation.yml").read_text())
    params = DataCurationParams(**conf["data_curation"])
    result, published = curate_all({}, params)
    splits = add_published(
        split_by_prompt_group(result.curated_pairs, params.splits, params.seed), published.records
    )
    return params, result, published, vars(splits)


def test_every_set_is_read_from_its_pinned_package_and_every_record_is_accounted_for(curated):
    params, result, published, _ = curated
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier)[2:]
            for r in project["optional-dependencies"]["published-data"]}  # fmt: skip
    report = result.curation_report["published_sets"]
    for name in params.published_sets:
        parts = [key for key in report if key == name or key.startswith(f"{name}/")]
        assert parts, name
        for part in parts:
            counts = report[part]
            assert counts[
                "read"
            ] > 0 and (  # the project's own labels are a local file, the rest pinned packages
                counts["distribution"] is None
                or pins[canonicalize_name(counts["distribution"])] == counts["version"]
            ), part
            accounted = (sum(counts["used"].values()) + counts["quarantined_total"]
                         + sum(counts["excluded"].values()))  # fmt: skip
            assert accounted == counts["read"], part
            assert counts["bad_fraction"] <= params.max_bad_fraction, part
    totals = result.curation_report["published_totals"]
    assert totals["read"] == totals["used"] + totals["quarantined"] + totals["excluded"]
    assert len(result.quarantined_records) == totals["quarantined"] + totals["excluded"]


def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z0-9]+", identity_text(text).lower()))


def test_no_evaluation_prompt_is_in_any_training_split(curated):
    *_, splits = curated
    check_eval_disjoint(type("Splits", (), splits))  # the pipeline's own guard
    evaluated = {text for name in EVALUATION_SPLITS for text in splits[name]["prompt_text"]}
    # An independent measure from curation's trigram screen: shared words (Jaccard >= 0.8).
    by_word = defaultdict(set)
    for text in evaluated:
        for word in _words(text):
            by_word[word].add(text)
    copies = []
    for name in TRAINING_SPLITS:
        for text in set(splits[name]["prompt_text"]):
            words = _words(text)
            candidates = set().union(*(by_word[w] for w in words)) if words else set()
            for other in candidates:
                other_words = _words(other)
                if len(words & other_words) / len(words | other_words) >= 0.8:
                    copies.append((name, text, other))
    assert copies == []


def test_held_out_sets_reach_evaluation_only_and_harmbench_rows_nowhere(curated):
    _, result, published, splits = curated
    training_sources = {s for name in TRAINING_SPLITS for s in splits[name]["source"]}
    assert not {"strongreject", "jbb_benign", "jbb_harmful", "mt_bench"} & training_sources
    eval_sources = set(splits["eval_prompts"]["source"])
    assert {"strongreject", "jbb_benign"} <= eval_sources
    categories = splits["eval_prompts"].groupby("category").size()
    assert categories["unsafe"] >= 300 and categories["benign"] >= 200
    held = result.quarantined_records
    assert (held[held["source"] == "jbb_harmful"]["reason"] == "held_out_source").sum() == 27
    assert published.report["jbb_harmful"]["excluded"] == {"held_out_source": 27}


def test_the_capability_probe_is_published_answers_not_templates(curated):
    *_, splits = curated
    probe = splits["capability_probe"]
    assert len(probe) >= 60 and set(probe["source"]) == {"alpaca_eval"}
    assert probe["reference_response"].str.len().median() > 500  # GPT-4 Turbo's full answers
