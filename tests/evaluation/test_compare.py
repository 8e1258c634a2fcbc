"""Stage rows: win rate, confidence interval and style consistency by hand."""

import json

import pandas as pd
import pytest

from alignment_stages.evaluation.compare import paired_deltas, rates_by_group, stage_row
from alignment_stages.evaluation.memo import generations_from_json, generations_to_json
from alignment_stages.evaluation.protocol import PolicyEvaluation
from alignment_stages.evaluation.snapshot import Generations

METRICS = {"reward_mean": 1.0, "violation_rate": 0.25, "kl_to_base": 2.0, "probe_perplexity": 1.5,
           "distinct_1": 0.5, "distinct_2": 0.6, "length_mean": 10.0, "length_std": 2.0, "eos_rate": 0.9,
           "violation_rate_ci_low": 0.0, "violation_rate_ci_high": 0.5}  # fmt: skip


def _generations(rewards, labels):
    return Generations(
        prompt_ids=["a", "a", "b", "b"],
        prompts=[[]] * 4,
        categories=[None] * 4,
        rewards=rewards,
        labels=labels,
    )


def test_win_rate_ci_and_consistency_by_hand():
    base = _generations([0.0, 0.0, 1.0, 1.0], ["ok", "violation", "ok", "ok"])
    policy = _generations([1.0, 1.0, 1.0, 3.0], ["ok", "ok", "ok", "violation"])
    row = stage_row("ppo", {**METRICS, "reward_mean": 1.5}, policy, base)
    assert row["win_rate_vs_base"] == 0.875  # 1 > 0, 1 > 0, 1 = 1 (a tie: half), 3 > 1
    # Sample std of [1, 1, 1, 3] is 1, so the normal half-width is 1.96 · 1 / √4.
    assert row["reward_ci_high"] - row["reward_ci_low"] == pytest.approx(
        2 * 1.96 * 1.0 / 2, rel=1e-6
    )
    assert row["reward_spread_within_prompt"] == pytest.approx(
        0.5
    )  # prompt a: 0; prompt b: std(1, 3) = 1
    assert row["label_disagreement_within_prompt"] == 0.5  # prompt b's samples disagree
    assert stage_row("base", METRICS, base, base)["win_rate_vs_base"] == 0.5


def test_paired_deltas_by_hand():
    base = _generations([0.0, 0.0, 1.0, 1.0], ["ok", "violation", "ok", "ok"])
    policy = _generations([1.0, 1.0, 1.0, 3.0], ["ok", "ok", "ok", "violation"])
    row = paired_deltas("base", policy, base, seed=0)
    # Violations: prompt a −1/2, prompt b +1/2; rewards: prompt a +1, prompt b +1.
    assert row["violation_delta_vs_base"] == 0.0
    assert row["violation_delta_vs_base_ci_low"] == -0.5
    assert row["violation_delta_vs_base_ci_high"] == 0.5
    assert row["reward_delta_vs_base"] == 1.0
    assert row["reward_delta_vs_base_ci_low"] == row["reward_delta_vs_base_ci_high"] == 1.0


def test_rates_by_group_split_each_stage_by_category_and_source_with_intervals():
    prompts = pd.DataFrame({
        "prompt_id": ["a", "b", "c", "d"], "category": ["unsafe", "unsafe", "benign", "benign"],
        "source": ["strongreject", "strongreject", "jbb_benign", "mt_bench"],
    })  # fmt: skip
    ids = ["a", "a", "b", "b", "c", "c", "d", "d"]
    labels = ["violation", "violation", "violation", "ok", "ok", "ok", "violation", "ok"]
    generations = Generations(prompt_ids=ids, prompts=[[]] * 8, categories=[None] * 8,
                              labels=labels)  # fmt: skip
    table = rates_by_group({"base": PolicyEvaluation({}, generations)}, prompts, seed=0)
    rate = table.set_index(["grouping", "group"])["violation_rate"]
    assert rate[("category", "unsafe")] == 0.75 and rate[("category", "benign")] == 0.25
    assert rate[("source", "strongreject")] == 0.75 and rate[("source", "mt_bench")] == 0.5
    assert rate[("source", "jbb_benign")] == 0.0
    row = table.set_index(["grouping", "group"]).loc[("category", "unsafe")]
    assert row["prompts"] == 2 and row["samples"] == 4
    assert row["violation_rate_ci_low"] <= 0.75 <= row["violation_rate_ci_high"]


def test_rates_by_group_put_the_held_out_judges_rate_beside_the_panels():
    """Issue-level outcomes are per category and per judge: harmful compliance by the panel
    PPO saw and by the judges it never saw."""
    prompts = pd.DataFrame({"prompt_id": ["a", "b"], "category": ["unsafe", "benign"]})
    generations = Generations(prompt_ids=["a", "a", "b", "b"], prompts=[[]] * 4,
                              categories=[None] * 4, labels=["ok", "ok", "ok", "violation"],
                              heldout_labels=["violation", "ok", "ok", "ok"])  # fmt: skip
    table = rates_by_group({"dpo": PolicyEvaluation({}, generations)}, prompts, seed=0)
    row = table.set_index(["grouping", "group"]).loc[("category", "unsafe")]
    assert row["violation_rate"] == 0.0 and row["heldout_violation_rate"] == 0.5
    assert row["heldout_violation_rate_ci_low"] <= 0.5 <= row["heldout_violation_rate_ci_high"]
    no_held_out = Generations(prompt_ids=["a", "b"], prompts=[[]] * 2, categories=[None] * 2,
                              labels=["ok", "ok"])  # fmt: skip
    table = rates_by_group({"base": PolicyEvaluation({}, no_held_out)}, prompts, seed=0)
    assert table["heldout_violation_rate"].isna().all()


def test_an_evaluation_stored_before_held_out_labels_still_loads_and_a_truncated_one_does_not():
    generations = Generations(prompt_ids=["a"], prompts=[[]], categories=[None], labels=["ok"])
    stored = json.loads(generations_to_json(generations))
    del stored["heldout_labels"]
    assert generations_from_json(json.dumps(stored)).heldout_labels == []
    del stored["labels"]
    with pytest.raises(ValueError, match=r"lacks the generations' fields \['labels'\]"):
        generations_from_json(json.dumps(stored))
