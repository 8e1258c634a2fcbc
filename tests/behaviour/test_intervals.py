"""The cluster bootstrap: coverage on known data, prompts as the unit, and bad input."""

import numpy as np
import pytest

from alignment_stages.behaviour.intervals import (
    bootstrap_mean,
    cluster_standard_error,
    jackknife_standard_error,
)


def test_interval_brackets_the_estimate_and_narrows_with_more_prompts():
    rng = np.random.default_rng(0)
    small = rng.random(40) < 0.3
    large = rng.random(4000) < 0.3
    a = bootstrap_mean(small, [str(i) for i in range(40)])
    b = bootstrap_mean(large, [str(i) for i in range(4000)])
    assert a.low <= a.estimate <= a.high and b.low <= b.estimate <= b.high
    assert (b.high - b.low) < 0.25 * (a.high - a.low)
    # With independent samples the width matches the normal approximation 2·1.96·√(p(1−p)/n).
    expected = 2 * 1.96 * np.sqrt(0.3 * 0.7 / 4000)
    assert b.high - b.low == pytest.approx(expected, rel=0.15)


def test_the_prompt_is_the_unit_resampled():
    """Four identical samples per prompt carry one prompt's information, not four."""
    rng = np.random.default_rng(1)
    per_prompt = rng.random(100) < 0.5
    repeated = np.repeat(per_prompt, 4)
    clustered = bootstrap_mean(repeated, [str(i) for i in np.repeat(np.arange(100), 4)])
    naive = bootstrap_mean(repeated, [str(i) for i in range(400)])
    assert (clustered.high - clustered.low) > 1.6 * (naive.high - naive.low)


def test_nominal_coverage_over_many_seeded_datasets():
    rng = np.random.default_rng(2)
    covered = 0
    for seed in range(200):
        sample = rng.normal(1.0, 1.0, size=60)
        interval = bootstrap_mean(sample, [str(i) for i in range(60)], resamples=500, seed=seed)
        covered += interval.low <= 1.0 <= interval.high
    assert 0.88 <= covered / 200 <= 0.99  # 95% nominal; a percentile bootstrap is a bit short


def test_a_constant_difference_has_a_point_interval_that_excludes_zero_only_when_nonzero():
    zero = bootstrap_mean([0.0] * 10, list("abcdefghij"))
    assert (zero.low, zero.high) == (0.0, 0.0) and not zero.excludes(0.0)
    assert bootstrap_mean([-1.0] * 10, list("abcdefghij")).excludes(0.0)


@pytest.mark.parametrize(
    ("values", "groups", "confidence", "message"),
    [
        ([], [], 0.95, "empty"),
        ([1.0, 2.0], ["a"], 0.95, "differ in length"),
        ([1.0], ["a"], 1.0, "confidence"),
    ],
)
def test_bad_input_is_refused(values, groups, confidence, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_mean(values, groups, confidence=confidence)


def test_resampling_seeds_widens_the_interval_when_seeds_disagree():
    """Three training seeds whose effects differ: resampling prompts alone treats the seeds'
    spread as fixed; resampling seeds too (the pigeonhole bootstrap) shows it."""
    rng = np.random.default_rng(3)
    prompts = [str(i) for i in range(50)] * 3
    seeds = np.repeat([0, 1, 2], 50)
    values = rng.normal(0.0, 0.2, 150) + np.array([0.0, 0.3, 0.6])[seeds]
    prompts_only = bootstrap_mean(values, prompts)
    both = bootstrap_mean(values, prompts, replicates=seeds)
    assert both.low <= both.estimate <= both.high
    assert (both.high - both.low) > 3 * (prompts_only.high - prompts_only.low)
    same = np.tile(rng.normal(0.0, 0.2, 50), 3)  # identical seeds add nothing
    assert bootstrap_mean(same, prompts, replicates=seeds).high - bootstrap_mean(
        same, prompts, replicates=seeds
    ).low == pytest.approx(
        bootstrap_mean(same, prompts).high - bootstrap_mean(same, prompts).low, rel=0.2
    )


def test_replicates_must_match_the_values():
    with pytest.raises(ValueError, match="replicates"):
        bootstrap_mean([1.0, 2.0], ["a", "b"], replicates=[0])


def test_cluster_standard_error_by_hand():
    # per-prompt means 0, 1, 2 (two samples each): std 1 (ddof 1) over √3
    values = [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]
    assert cluster_standard_error(values, list("aabbcc")) == pytest.approx(1 / np.sqrt(3))
    assert cluster_standard_error([1.0, 0.0], ["a", "a"]) == 0.0


def test_jackknife_standard_error_of_a_mean_equals_the_cluster_standard_error():
    """For a plain mean over equal clusters the jackknife is exact (Efron & Tibshirani 11.5)."""
    rng = np.random.default_rng(4)
    values = rng.normal(size=40).tolist()
    groups = [str(i // 2) for i in range(40)]
    jackknife = jackknife_standard_error(values, groups, lambda v: float(np.mean(v)))
    assert jackknife == pytest.approx(cluster_standard_error(values, groups))
    assert jackknife_standard_error([1.0, 2.0], ["a", "a"], lambda v: float(np.mean(v))) == 0.0
