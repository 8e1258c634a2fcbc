"""Confidence intervals for evaluation metrics, bootstrapped over prompts.

The samples of one prompt are not independent (same prompt, often the same answer), so the unit
of resampling is the prompt: a cluster bootstrap (Efron & Tibshirani 1993, ch. 6; Field & Welsh
2007 for clustered data). A paired difference resamples the same prompts for both policies,
which is what "same prompts, same seeds" buys: the prompt-to-prompt variation cancels.

Short training runs add a second source of noise: the training seed. `bootstrap_mean` with
`replicates` resamples prompts and seeds independently, as a crossed design with two random
factors (Owen 2007, "The pigeonhole bootstrap"; it is conservative, never too narrow, for such
designs). `cluster_standard_error` gives the matching normal-approximation standard error that
the gate rescales to its configured confidence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def _codes(labels: Sequence) -> tuple[np.ndarray, int]:
    """(N,) integer code of each label and the number of distinct labels."""
    _, index = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return index, int(index.max()) + 1 if len(index) else 0


def _cells(values: np.ndarray, groups: Sequence, replicates: Sequence) -> np.ndarray:
    """(2, S, G) sums and sample counts per (replicate, prompt) cell, so a resample is a
    weighted mean of cells."""
    prompt, n_prompts = _codes(groups)
    seed, n_seeds = _codes(replicates)
    cell = seed * n_prompts + prompt
    size = n_seeds * n_prompts
    sums = np.bincount(cell, weights=values, minlength=size).reshape(n_seeds, n_prompts)
    counts = np.bincount(cell, minlength=size).astype(float).reshape(n_seeds, n_prompts)
    return np.stack([sums, counts])


def _check(array: np.ndarray, groups: Sequence, replicates: Sequence | None) -> None:
    if array.ndim != 1 or len(array) != len(groups):
        raise ValueError(f"values ({array.shape}) and groups ({len(groups)}) differ in length")
    if replicates is not None and len(replicates) != len(array):
        raise ValueError(f"values ({array.shape}) and replicates ({len(replicates)}) differ")
    if len(array) == 0:
        raise ValueError("cannot bootstrap an empty sample")


def bootstrap_mean(
    values: Sequence[float],
    groups: Sequence[str],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    replicates: Sequence | None = None,
) -> Interval:
    """Percentile interval of the mean of (N,) `values`, resampling the prompts in (N,) `groups`
    and, when (N,) `replicates` is given (the training seed of each sample), the replicates too.

    For a paired difference between two policies pass `values = a - b` (same order).
    """
    array = np.asarray(values, dtype=np.float64)
    _check(array, groups, replicates)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    sums, counts = _cells(array, groups, replicates if replicates is not None else [0] * len(array))
    n_seeds, n_prompts = sums.shape
    generator = np.random.default_rng(seed)
    # (R, G) and (R, S) draw counts: how often each prompt and each seed is drawn.
    prompt_weights = _draw_counts(generator, resamples, n_prompts)
    seed_weights = (
        _draw_counts(generator, resamples, n_seeds) if n_seeds > 1 else np.ones((resamples, 1))
    )
    numerator = np.einsum("rs,sg,rg->r", seed_weights, sums, prompt_weights)
    denominator = np.einsum("rs,sg,rg->r", seed_weights, counts, prompt_weights)
    means = numerator / np.maximum(denominator, 1e-12)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means[denominator > 0], [tail, 1 - tail])
    return Interval(float(array.mean()), float(low), float(high), confidence)


def _draw_counts(generator: np.random.Generator, resamples: int, size: int) -> np.ndarray:
    """(R, size) counts of a with-replacement draw of `size` items, `resamples` times."""
    picks = generator.integers(0, size, size=(resamples, size))
    offsets = picks + size * np.arange(resamples)[:, None]  # one bincount over all rows
    return (
        np.bincount(offsets.ravel(), minlength=resamples * size)
        .reshape(resamples, size)
        .astype(float)
    )


def cluster_standard_error(values: Sequence[float], groups: Sequence[str]) -> float:
    """Standard error of the mean of (N,) `values` with prompts as clusters: the spread of the
    per-prompt means over √G (exact for equal samples per prompt; Cameron & Miller 2015).
    0 for a single prompt, where no spread is observable."""
    array = np.asarray(values, dtype=np.float64)
    _check(array, groups, None)
    sums, counts = _cells(array, groups, [0] * len(array))
    means = sums[0] / counts[0]
    return float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else 0.0


def jackknife_standard_error(
    items: Sequence, groups: Sequence[str], statistic: Callable[[list], float]
) -> float:
    """Delete-one-prompt jackknife standard error of `statistic(items)` (Efron & Tibshirani
    1993, ch. 11), for corpus-level statistics such as distinct-n that have no per-sample value:
    √((G − 1)/G · Σ_g (θ_(g) − θ̄)²) over the G prompts. 0 for a single prompt."""
    index, n_groups = _codes(groups)
    if n_groups < 2:
        return 0.0
    leave_one_out = np.array(
        [statistic([item for item, g in zip(items, index, strict=True) if g != drop])
         for drop in range(n_groups)]
    )  # fmt: skip
    spread = ((leave_one_out - leave_one_out.mean()) ** 2).sum()
    return float(np.sqrt((n_groups - 1) / n_groups * spread))
