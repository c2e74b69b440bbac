"""The paired held-out verdict: did the optimized prompt beat the initial one on the same rows?

Both prompts are scored on exactly the same held-out rows, so the comparison is paired: per row, a win, a loss or a
tie. The difference of means gets a paired bootstrap 95% CI, and an exact test decides whether it is told apart
from noise: McNemar's exact test (a sign test on the discordant rows) for 0/1 scores, a paired sign-flip permutation
test for graded ones. The verdict is one of improved / no detectable difference / worse, never a bare pair of means,
and it states the smallest difference this test size could have detected (never less than the exact test can reach
on that many rows) and the size that would be needed; below 6 rows no result can reach p < 0.05, and it says so.
The numbers are computed in `metrics.paired_stats`.

Length is reported apart from quality: a prompt chosen because it is shorter at equal quality is said to be exactly
that, never "improved".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from promptomatix.errors import StateError
from promptomatix.metrics.paired_stats import (
    ALPHA,
    bootstrap_ci,
    exact_floor,
    min_detectable,
    min_rows,
    rows_needed,
    sign_flip_p,
)

Outcome = Literal["improved", "no_detectable_difference", "worse", "no_test", "unreliable"]

_MIN_EFFECT = 0.05  # the smallest gain worth sizing a test for


class PairedVerdict(BaseModel):
    """Initial vs optimized on the same held-out rows."""

    outcome: Outcome
    split: str = "test"
    n: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    initial_mean: float | None = None
    optimized_mean: float | None = None
    diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    test: str | None = None
    alpha: float = ALPHA
    min_detectable_diff: float | None = None
    n_needed: int | None = None
    n_errors: int = 0
    initial_words: int | None = None
    optimized_words: int | None = None
    same_prompt: bool = False
    #: optimized minus initial raw score on valid, where the search chose: a choice made on quality is not one made
    #: on length, whatever the test can tell
    valid_gain: float | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def improved(self) -> bool:
        return self.outcome == "improved"

    @property
    def too_small(self) -> bool:
        """No result on this few rows can reach p < alpha (an exact test's smallest p is 2 * 0.5**n)."""
        return self.outcome != "no_test" and 0 < self.n < min_rows(self.alpha)

    def summary(self) -> str:
        """One line a user can act on."""
        if self.outcome == "no_test":
            return "no held-out test: " + ("; ".join(self.notes) or "no rows to compare on")
        if self.diff is None or self.ci_low is None or self.ci_high is None:
            raise StateError(
                f"a '{self.outcome}' verdict without its paired difference", hint="re-run the held-out scoring"
            )
        counts = f"{self.wins} wins / {self.losses} losses / {self.ties} ties on {self.n} {self.split} rows"
        stats = f"{self.diff:+.3f} (95% CI {self.ci_low:+.3f} to {self.ci_high:+.3f}), p={self.p_value:.3g}"
        head = {
            "improved": "improved",
            "worse": "worse",
            "no_detectable_difference": "no detectable difference",
            "unreliable": "unreliable comparison",
        }[self.outcome]
        line = f"{head}: {stats}, {counts}"
        if self.outcome == "unreliable":
            line += "; " + "; ".join(self.notes)
        if self.outcome == "no_detectable_difference":
            line += self._size_advice()
        if self.same_prompt:
            line = "the optimized prompt is the initial prompt: " + line
        return line

    def _size_advice(self) -> str:
        """What this many rows can tell, and how many would tell the difference seen (or 0.05, if smaller)."""
        need = max(self.n_needed or 0, min_rows(self.alpha))
        if self.too_small:
            rows = f"{self.n} row" + ("s" if self.n != 1 else "")
            return (f"; this {self.split} split is too small for any verdict: {rows} cannot show a difference at "
                    f"p < {self.alpha:g}; about {need} rows would detect {_sized_effect(self):.2f}")  # fmt: skip
        line = ""
        if self.ci_low is not None and self.ci_high is not None and (self.ci_low > 0 or self.ci_high < 0):
            line += f"; on {self.n} rows the bootstrap CI is too narrow to go by: the exact test decides"
        if self.min_detectable_diff is not None:
            line += f"; this test could only detect differences of about {self.min_detectable_diff:.2f} or more"
            if need > self.n:
                line += f" (about {need} rows would detect {_sized_effect(self):.2f})"
        return line

    def length_note(self) -> str | None:
        """Say so when the choice rests on length, not quality."""
        if self.initial_words is None or self.optimized_words is None or self.same_prompt:
            return None
        delta = self.initial_words - self.optimized_words
        chosen_on_length = self.valid_gain is None or abs(self.valid_gain) < 1e-9
        if delta > 0 and self.outcome == "no_detectable_difference" and chosen_on_length:
            return f"chosen because it is {delta} words shorter at no detectable difference in quality"
        if self.outcome == "no_detectable_difference" and self.valid_gain and self.valid_gain > 0:
            size = f"; it is {delta} words shorter" if delta > 0 else f"; it is {-delta} words longer" if delta else ""
            return (f"chosen for its valid score (+{self.valid_gain:.3f}), a gain the held-out test could not "
                    f"confirm{size}")  # fmt: skip
        if delta < 0:
            return f"the optimized prompt is {-delta} words longer"
        if delta > 0:
            return f"the optimized prompt is {delta} words shorter"
        return None


def _sized_effect(v: PairedVerdict) -> float:
    return max(_MIN_EFFECT, abs(v.diff or 0.0))


def _is_binary(values: Sequence[float]) -> bool:
    return all(x in (0.0, 1.0) for x in values)


def balanced_weights(labels: Sequence[str]) -> list[float] | None:
    """Row weights under which the mean of 0/1 hits is balanced accuracy, the score the test split reports for
    classification: n / (labels × rows of the row's label). None when every label has as many rows (the plain
    mean is balanced accuracy then, and the exact McNemar test applies)."""
    from collections import Counter

    counts = Counter(labels)
    if len(set(counts.values())) <= 1:
        return None
    n, k = len(labels), len(counts)
    return [n / (k * counts[label]) for label in labels]


def _finite(values: Sequence[float], what: str) -> list[float]:
    """The scores as floats; a missing or non-finite one is refused by row, not passed on to fail in the test."""
    out = []
    for row, x in enumerate(values):
        try:
            value = float(x)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"paired scores must be finite numbers: row {row} of the {what} is {x!r} "
                             "(score a row that errored 0 and count it in errors=)")  # fmt: skip
        out.append(value)
    return out


def _p_value(
    diffs: Sequence[float], wins: int, losses: int, seed: int, *, binary: bool, weighted: bool
) -> tuple[float, str]:
    """McNemar's exact test for unweighted 0/1 scores, else the paired sign-flip permutation test."""
    from scipy import stats

    if binary and not weighted:
        p = float(stats.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
        return p, "exact McNemar"
    p = sign_flip_p(diffs, seed) if wins + losses else 1.0
    return p, "paired permutation" + (", rows weighted as in balanced accuracy" if weighted else "")


def _sd_of_diffs(diffs: Sequence[float], binary: bool) -> float:
    """The spread that sizes the test; a floor keeps an all-ties sample from claiming tiny detectable effects."""
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(1, n - 1))
    floor = 0.3 if binary else 0.1  # binary: a 10 % discordance rate
    return max(sd, floor)


def _sizing(diffs: Sequence[float], binary: bool, weights: Sequence[float] | None) -> tuple[float | None, int]:
    """The smallest difference this test could detect (None: none on this few rows) and the rows that would detect
    the difference seen, or 0.05 if it is smaller; both bounded by what the exact test can reach."""
    n, sd = len(diffs), _sd_of_diffs(diffs, binary)
    mde = min_detectable(sd, n, exact_floor(n, binary, weights))
    unit = 0.0 if not binary else min_rows() * (1.0 if weights is None else min(weights))  # the 0/1 floor × rows
    return mde, rows_needed(sd, max(_MIN_EFFECT, abs(sum(diffs) / n)), unit)


def paired_verdict(
    initial: Sequence[float],
    optimized: Sequence[float],
    *,
    errors: int = 0,
    split: str = "test",
    initial_words: int | None = None,
    optimized_words: int | None = None,
    same_prompt: bool = False,
    seed: int = 0,
    weights: Sequence[float] | None = None,
    valid_gain: float | None = None,
) -> PairedVerdict:
    """Compare two prompts scored on the same rows, in the same order. `errors` = rows that errored in either.
    `weights` (see `balanced_weights`) make the means, the difference and the test those of balanced accuracy,
    so the verdict is about the score the report shows; wins and losses stay row counts. A missing or non-finite
    score is a ValueError naming its row."""
    if len(initial) != len(optimized) or (weights is not None and len(weights) != len(initial)):
        raise ValueError("paired scores must cover the same rows")
    initial, optimized = _finite(initial, "initial scores"), _finite(optimized, "optimized scores")
    binary = _is_binary([*initial, *optimized])
    if weights is not None:
        weights = _finite(weights, "weights")
        if min(weights, default=1.0) <= 0:
            raise ValueError("row weights must be positive")
        initial = [w * x for w, x in zip(weights, initial, strict=True)]
        optimized = [w * x for w, x in zip(weights, optimized, strict=True)]
    base = {"split": split, "initial_words": initial_words, "optimized_words": optimized_words,
            "same_prompt": same_prompt, "n_errors": errors, "valid_gain": valid_gain}  # fmt: skip
    n = len(initial)
    if n == 0:
        return PairedVerdict(outcome="no_test", notes=["no held-out rows"], **base)
    diffs = [o - i for i, o in zip(initial, optimized, strict=True)]
    wins = sum(d > 1e-9 for d in diffs)
    losses = sum(d < -1e-9 for d in diffs)
    diff = sum(diffs) / n
    lo, hi = bootstrap_ci(diffs, seed, strata=weights)  # within each label's rows: a balanced-accuracy CI
    p, test = _p_value(diffs, wins, losses, seed, binary=binary, weighted=weights is not None)
    mde, n_needed = _sizing(diffs, binary, weights)
    notes: list[str] = []
    if p < ALPHA and diff > 0:
        outcome: Outcome = "improved"
    elif p < ALPHA and diff < 0:
        outcome = "worse"
    else:
        outcome = "no_detectable_difference"
    if errors:  # errored rows score 0 on one side: whatever the test says, it is not about the prompts
        outcome = "unreliable"
        notes.append(f"{errors} of {n} rows errored, so the comparison is unreliable and not an improvement")
    return PairedVerdict(
        outcome=outcome, n=n, wins=wins, losses=losses, ties=n - wins - losses,
        initial_mean=sum(initial) / n, optimized_mean=sum(optimized) / n, diff=diff, ci_low=lo, ci_high=hi,
        p_value=p, test=test, min_detectable_diff=mde, n_needed=n_needed, notes=notes, **base,
    )  # fmt: skip
