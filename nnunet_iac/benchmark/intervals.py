"""Bootstrap intervals of a mean difference, over cases and over training seeds, and Holm's correction.

Two sources of chance separate two arms of the benchmark: which cases the test set happens to hold, and which
training seed each arm happened to get. An interval over cases alone, computed on the per-case mean of the
seeds, treats the seeds' average model as fixed and leaves the seed-to-seed spread out (issue 37). The
two-level bootstrap here resamples both: per replicate a sample of cases (the same for both arms: the cases are
paired) and, independently for each arm, a sample of its seeds. With one seed on a side that side's seed term
is zero, and the interval is the case interval.

With few seeds (three, as the benchmark runs) a bootstrap over seeds underestimates their spread: the plug-in
variance of s values is (s - 1) / s of the unbiased one, and a percentile interval of three values cannot reach
the t distribution's tails. The seed deviations are therefore scaled by sqrt(s / (s - 1)) before resampling (so
the bootstrap variance of the seed mean equals the unbiased estimate), and the coverage actually reached at 3
seeds is measured in tests/bench/test_intervals.py and stated in the report rather than assumed.

The level is a parameter with a tested default: ``LEVEL`` 0.95, the percentiles 2.5 and 97.5.
"""
from __future__ import annotations

import numpy as np

LEVEL = 0.95
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0


def percentiles(level: float = LEVEL) -> tuple[float, float]:
    """The two percentiles of a central interval at ``level`` (0.95 -> 2.5, 97.5)."""
    if not 0 < level < 1:
        raise ValueError(f"An interval's level must lie between 0 and 1, got {level}.")
    tail = 100 * (1 - level) / 2
    return tail, 100 - tail


def bootstrap_interval(values, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement; a fixed seed, so that
    a report is reproducible)."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(samples, len(data)))].mean(axis=1)
    low, high = np.percentile(means, percentiles(level))
    return float(low), float(high)


def _widened(seeds_by_cases: np.ndarray) -> np.ndarray:
    """Each seed's row moved away from the seeds' mean by sqrt(s / (s - 1)): the resampled seed mean then has the
    unbiased variance of the seeds instead of (s - 1) / s of it."""
    s = seeds_by_cases.shape[0]
    if s < 2:
        return seeds_by_cases
    mean = seeds_by_cases.mean(axis=0, keepdims=True)
    return mean + np.sqrt(s / (s - 1)) * (seeds_by_cases - mean)


def _resampled_means(seeds_by_cases: np.ndarray, cases: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per replicate: the mean over a resample of seeds of each seed's mean over the replicate's cases."""
    per_seed = seeds_by_cases[:, cases].mean(axis=-1).T  # replicates x seeds
    s = per_seed.shape[1]
    picks = rng.integers(0, s, size=per_seed.shape)
    return np.take_along_axis(per_seed, picks, axis=1).mean(axis=1)


def seed_and_case_interval(a, b, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                           level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of mean(a) - mean(b), resampling cases (paired) and each arm's seeds.

    ``a`` and ``b`` are seeds x cases arrays over the same cases in the same order."""
    a, b = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (a, b))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Both arms need the same cases; got {a.shape[1]} and {b.shape[1]}.")
    rng = np.random.default_rng(seed)
    cases = rng.integers(0, a.shape[1], size=(samples, a.shape[1]))
    differences = _resampled_means(_widened(a), cases, rng) - _resampled_means(_widened(b), cases, rng)
    low, high = np.percentile(differences, percentiles(level))
    return float(low), float(high)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment: the family-wise error of a table of comparisons held at the level each p is
    read against (a table of 20 rows at 0.05 has about one 'significant' row by chance alone otherwise)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
