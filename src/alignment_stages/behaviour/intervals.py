"""Confidence intervals for evaluation metrics, bootstrapped over prompts.

The samples of one prompt are not independent (same prompt, often the same answer), so the unit
of resampling is the prompt: a cluster bootstrap (Efron & Tibshirani 1993, ch. 6; Field & Welsh
2007 for clustered data). A paired difference resamples the same prompts for both policies,
which is what "same prompts, same seeds" buys: the prompt-to-prompt variation cancels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    estimate: float  # the statistic on the observed data
    low: float  # lower bound of the two-sided percentile interval
    high: float  # upper bound
    confidence: float  # e.g. 0.95

    def excludes(self, value: float) -> bool:
        """True when `value` lies outside [low, high]: the data show a direction."""
        return value < self.low or value > self.high

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _cluster_means(values: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """(G,) per-prompt sums and sample counts, so a resample is a weighted mean of clusters."""
    _, index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index).astype(float)
    return np.stack([sums, counts])


def bootstrap_mean(
    values: Sequence[float],
    groups: Sequence[str],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Percentile interval of the mean of (N,) `values`, resampling the prompts in (N,) `groups`.

    For a paired difference between two policies pass `values = a - b` (same order).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) != len(groups):
        raise ValueError(f"values ({array.shape}) and groups ({len(groups)}) differ in length")
    if len(array) == 0:
        raise ValueError("cannot bootstrap an empty sample")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    sums, counts = _cluster_means(array, groups)
    generator = np.random.default_rng(seed)
    picks = generator.integers(0, len(sums), size=(resamples, len(sums)))  # (R, G) prompt draws
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(array.mean()), float(low), float(high), confidence)
