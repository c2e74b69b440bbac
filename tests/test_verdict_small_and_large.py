"""The paired verdict at the edges of test size: too few rows for any verdict, a detectable difference never below
what the exact test can reach, a balanced-accuracy CI inside [-1, 1], 10 000 rows in bounded memory, and scores
that are not numbers refused by row."""

from __future__ import annotations

import functools
import math
import random
import time
import tracemalloc

import numpy as np
import pytest
from scipy import stats

from promptomatix.metrics.verdict import balanced_weights, paired_verdict


@functools.cache
def _exact_floor(n: int) -> float:
    """By brute force over every wins/losses split of n 0/1 rows: the smallest |difference| McNemar's exact test
    (two-sided binomial, as scipy computes it) calls significant; inf when none is."""
    wins, losses = (m.ravel() for m in np.meshgrid(np.arange(n + 1), np.arange(n + 1)))
    keep = (wins + losses <= n) & (wins + losses > 0)
    wins, losses = wins[keep], losses[keep]
    p = np.minimum(1.0, 2 * stats.binom.cdf(np.minimum(wins, losses), wins + losses, 0.5))
    significant = np.abs(wins - losses)[p < 0.05]
    return significant.min() / n if significant.size else math.inf


def test_four_rows_all_won_say_the_split_is_too_small_and_how_many_rows_would_do():
    v = paired_verdict([0.0] * 4, [1.0] * 4)
    assert v.outcome == "no_detectable_difference" and v.p_value == pytest.approx(0.125)
    line = v.summary()
    assert "this test split is too small for any verdict: 4 rows cannot show a difference at p < 0.05" in line
    assert line.endswith("about 6 rows would detect 1.00")
    assert "could only detect" not in line and "too narrow to go by" not in line
    assert v.too_small and v.min_detectable_diff is None and v.n_needed == 6
    graded = paired_verdict([0.1, 0.2, 0.3], [0.6, 0.7, 0.9])  # no permutation of 3 rows reaches p < 0.05 either
    assert graded.too_small and "3 rows cannot show a difference" in graded.summary()


def test_the_detectable_difference_is_never_below_what_the_exact_test_can_reach():
    assert next(n for n in range(1, 41) if _exact_floor(n) < math.inf) == 6  # the brute force agrees with 2 * 0.5**n
    assert _exact_floor(10) == pytest.approx(0.6) and stats.binomtest(6, 6).pvalue < 0.05 < stats.binomtest(5, 5).pvalue
    patterns = {"all tied": lambda n: ([1.0] * n, [1.0] * n), "all won": lambda n: ([0.0] * n, [1.0] * n),
                "half won": lambda n: ([0.0] * n, [float(i % 2) for i in range(n)])}  # fmt: skip
    for name, make in patterns.items():
        previous = math.inf
        for n in range(1, 41):
            floor = _exact_floor(n)
            v = paired_verdict(*make(n))
            mde = math.inf if v.min_detectable_diff is None else v.min_detectable_diff
            assert (v.min_detectable_diff is None) == (floor == math.inf), (name, n)
            assert mde >= floor - 1e-12, (name, n, mde, floor)
            assert mde <= previous + 1e-12, (name, n, mde, previous)  # more rows never detect less
            assert v.n_needed >= 6 and v.n_needed * max(0.05, abs(v.diff)) >= 6 - 1e-9, (name, n)  # enough rows
            previous = mde


def test_a_difference_the_test_could_not_detect_comes_with_the_rows_that_would():
    v = paired_verdict([0.0] * 10, [1.0] * 5 + [0.0] * 5)  # +0.5, p = 0.0625: 6 of 10 rows won is the least
    assert v.outcome == "no_detectable_difference"
    assert v.min_detectable_diff == pytest.approx(0.6) and v.n_needed >= 12
    assert f"about 0.60 or more (about {v.n_needed} rows would detect 0.50)" in v.summary()


def test_the_weighted_ci_is_a_balanced_accuracy_ci_within_plus_minus_one():
    v = paired_verdict([0.0] * 5, [1.0] * 5, weights=balanced_weights(["a", "a", "a", "b", "b"]))
    assert v.diff == pytest.approx(1.0) and (v.ci_low, v.ci_high) == pytest.approx((1.0, 1.0))
    rng = random.Random(0)
    for trial in range(200):
        n = rng.choice([6, 10, 16, 30])
        labels = [rng.choice("abc") if rng.random() < 0.5 else "a" for _ in range(n)]
        weights = balanced_weights(labels)
        if weights is None:
            continue
        a = [float(rng.random() < 0.7) for _ in range(n)]
        b = [float(rng.random() < 0.3) for _ in range(n)]
        v = paired_verdict(a, b, weights=weights, seed=trial)
        assert -1 - 1e-9 <= v.ci_low <= v.ci_high <= 1 + 1e-9, (labels, a, b, v.summary())


def test_a_10k_row_verdict_takes_seconds_and_bounded_memory():
    rng = random.Random(0)
    a = [rng.random() for _ in range(10_000)]
    b = [min(1.0, max(0.0, x + rng.gauss(0.01, 0.1))) for x in a]
    hits_a = [float(rng.random() < 0.5) for _ in range(10_000)]
    hits_b = [float(rng.random() < 0.55) for _ in range(10_000)]
    weights = balanced_weights([rng.choice("aab") for _ in range(10_000)])
    paired_verdict([0.0, 1.0] * 10, [1.0, 0.5] * 10)  # imports out of the measurement
    tracemalloc.start()
    start = time.perf_counter()
    try:
        graded = paired_verdict(a, b)
        weighted = paired_verdict(hits_a, hits_b, weights=weights)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert graded.test == "paired permutation" and "weighted" in weighted.test
    assert graded.outcome == "improved" and weighted.outcome == "improved"
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MB"  # it was ~6 GB: every resample at once
    assert time.perf_counter() - start < 20  # it was ~60 s


def test_the_permutation_test_is_scipys_on_few_rows_and_within_noise_on_more():
    def scipy_p(d: np.ndarray, resamples: int) -> float:
        return stats.permutation_test((d,), lambda x, axis: x.mean(axis=axis), permutation_type="samples",
                                      n_resamples=resamples, random_state=1, vectorized=True).pvalue  # fmt: skip

    for n in (6, 9, 12, 13):  # 2**n sign flips <= 9999: both enumerate them all
        a = np.random.default_rng(n).random(n)
        b = np.clip(a + np.random.default_rng(n + 1).normal(0.1, 0.3, n), 0, 1)
        assert paired_verdict(list(a), list(b)).p_value == pytest.approx(scipy_p(b - a, 9999), abs=1e-12)
    a = np.random.default_rng(1).random(30)
    b = np.clip(a + np.random.default_rng(2).normal(0.1, 0.3, 30), 0, 1)
    reference = scipy_p(b - a, 99_999)
    assert paired_verdict(list(a), list(b), seed=3).p_value == pytest.approx(reference, abs=0.01)


@pytest.mark.parametrize(
    ("initial", "optimized", "message"),
    [
        ([0.5, float("nan"), 0.2], [0.6, 0.7, 0.1], "row 1 of the initial scores is nan"),
        ([0.5, 0.4], [None, 0.7], "row 0 of the optimized scores is None"),
        ([0.0] * 10 + [float("nan")], [1.0] * 11, "row 10 of the initial scores is nan"),
        ([0.5, 0.4], [0.6, float("inf")], "row 1 of the optimized scores is inf"),
    ],
)
def test_a_missing_or_nan_score_is_a_clear_error_naming_its_row(initial, optimized, message):
    with pytest.raises(ValueError, match=message) as err:
        paired_verdict(initial, optimized)
    assert "errors=" in str(err.value)  # names the fix: score an errored row 0 and count it
