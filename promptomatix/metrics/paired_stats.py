"""The numbers behind the paired verdict (`metrics.verdict`): the bootstrap CI, the paired permutation test and what
a test of n rows can detect.

Memory and time stay bounded at any n: resamples are drawn in chunks of at most `_CHUNK` values (a 10 000-row
verdict needs tens of MB and about a second, where materializing every resample at once took 6 GB and 30 s). Up
to `_CHUNK` values the bootstrap draws the same resamples for a seed as an unchunked one would.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALPHA = 0.05
POWER = 0.8
_Z_ALPHA = 1.959964  # two-sided 5 %
_Z_POWER = 0.841621  # 80 % power
_BOOTSTRAP = 2000
_RESAMPLES = 9999  # random sign flips; a test of n rows with 2**n <= this enumerates all of them (exact)
_CHUNK = 1 << 21  # values drawn at a time: 16 MB of float64


def min_rows(alpha: float = ALPHA) -> int:
    """Fewest rows on which an exact paired test can reach p < alpha at all: k rows all going one way give McNemar's
    exact test and the sign-flip permutation test their smallest two-sided p, 2 * 0.5**k (6 rows for 0.05)."""
    k = 1
    while 2 * 0.5**k >= alpha:
        k += 1
    return k


def bootstrap_ci(values: Sequence[float], seed: int, strata: Sequence[float] | None = None) -> tuple[float, float]:
    """Percentile 95% CI of the mean of `values` (paired differences: resampling rows keeps pairs together);
    deterministic for a seed. With `strata`, rows are resampled within each stratum, so every stratum keeps its row
    count: with balanced-accuracy weights (one weight per label) each resample's weighted mean is then that
    resample's balanced-accuracy difference, bounded by ±1 like it."""
    import numpy as np

    vals = np.asarray(values, dtype=float)
    n = len(vals)
    if strata is None:
        groups = [vals]
    else:
        keys = np.asarray(strata, dtype=float)
        groups = [vals[keys == key] for key in np.unique(keys)]
    rng = np.random.default_rng(seed)
    per = max(1, _CHUNK // n)
    means = []
    for start in range(0, _BOOTSTRAP, per):
        size = min(per, _BOOTSTRAP - start)
        total = np.zeros(size)
        for group in groups:
            total += group[rng.integers(0, len(group), size=(size, len(group)))].sum(axis=1)
        means.append(total / n)
    ordered = np.sort(np.concatenate(means))
    return float(ordered[int(0.025 * (_BOOTSTRAP - 1))]), float(ordered[math.ceil(0.975 * (_BOOTSTRAP - 1))])


def sign_flip_p(diffs: Sequence[float], seed: int, alternative: str = "two-sided") -> float:
    """Two-sided p of the paired permutation test of the mean difference: each row's sign flipped at random (all
    2**n flips when there are no more than `_RESAMPLES`, then exact), as `scipy.stats.permutation_test` with
    `permutation_type="samples"` computes it, but in bounded chunks. `alternative="greater"`: one-sided, the
    chance of a mean difference at least this large."""
    import numpy as np

    d = np.asarray(diffs, dtype=float)
    n = len(d)
    observed = float(d.mean())
    tol = 1e-10 * (float(np.abs(d).mean()) + abs(observed))  # null values equal to the observed one in theory
    if 2**n <= _RESAMPLES:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
        null = signs @ d / n
        low, high, total, plus = int((null <= observed + tol).sum()), int((null >= observed - tol).sum()), 2**n, 0
    else:
        rng = np.random.default_rng(seed)
        per, low, high, total, plus = max(1, _CHUNK // n), 0, 0, _RESAMPLES, 1
        for start in range(0, _RESAMPLES, per):
            size = min(per, _RESAMPLES - start)
            flips = np.unpackbits(rng.integers(0, 256, size=(size, (n + 7) // 8), dtype=np.uint8), axis=1, count=n)
            null = (d.sum() - 2 * (flips @ d)) / n
            low += int((null <= observed + tol).sum())
            high += int((null >= observed - tol).sum())
    if alternative == "greater":
        return (high + plus) / (total + plus)
    return min(1.0, 2 * (min(low, high) + plus) / (total + plus))


def _quantiles(n: int) -> float:
    """t(1 - alpha/2) + t(power) at n - 1 degrees of freedom: on few rows the normal z values understate the size."""
    from scipy import stats

    df = max(1, n - 1)
    return float(stats.t.ppf(1 - ALPHA / 2, df) + stats.t.ppf(POWER, df))


def exact_floor(n: int, binary: bool, weights: Sequence[float] | None) -> float:
    """The smallest difference the exact test can call significant on n rows at all. For 0/1 scores that is
    `min_rows()` rows won and the rest tied, k/n (with balanced-accuracy weights, the k lightest rows won). Graded
    rows can differ by any amount, so only the row count bounds them (see `min_rows`)."""
    k = min_rows()
    if not binary or n < k:
        return 0.0
    return (k if weights is None else sum(sorted(weights)[:k])) / n


def min_detectable(sd: float, n: int, floor: float) -> float | None:
    """About the smallest difference a test of n rows detects (5 % two-sided, 80 % power), never below what the
    exact test can reach at n; None when no result on n rows can be significant."""
    if n < min_rows():
        return None
    return min(1.0, max(_quantiles(n) * sd / math.sqrt(n), floor))


def rows_needed(sd: float, target: float, floor_unit: float) -> int:
    """About how many rows detect `target`: the Student-t size at this spread, and no fewer than the exact test
    needs (`floor_unit / target`, the 0/1 floor at that size, and `min_rows()`)."""
    m = max(min_rows(), math.ceil(floor_unit / target - 1e-9), math.ceil(((_Z_ALPHA + _Z_POWER) * sd / target) ** 2))
    for _ in range(100):  # t quantiles fall as m grows, so this climbs to the smallest size that suffices
        if _quantiles(m) * sd / math.sqrt(m) <= target:
            break
        m = max(m + 1, math.ceil((_quantiles(m) * sd / target) ** 2))
    return m
