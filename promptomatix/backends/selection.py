"""Selection helpers for the meta backend: fair comparisons on shared rows, and the final confirmation.

Why a confirmation stage: picking the best of a dozen candidates on a dozen validation rows rewards luck (a
junk instruction won on 12 rows and lost on the test split). The finalists are therefore re-scored on the
train rows too, excluding each candidate's own demos, and compared with the initial prompt on exactly the same
rows; a finalist must beat the initial prompt there as well as on valid.

Why paired evidence on top of the margin: a mean over two dozen rows of a graded metric moves with one or two rows.
On squad a finalist that beat the initial prompt by 0.04 F1 there, on 4 rows against 1, lost on 100 fresh rows by
a significant margin (benchmarks/RESULTS.md §7). So a finalist must also beat the initial prompt by more than luck
would give it (one-sided, p <= EVIDENCE_P, ties dropped) or lose no row (a shorter prompt at equal quality). For
0/1 scores that is the sign test; for graded scores the paired sign-flip permutation test, which weighs each row's
difference: four rows won by 0.05 F1 and one lost by 0.9 is no gain, though the sign test saw "4 to 1".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptomatix.backends.base import selection_score
from promptomatix.data.validate import row_key

if TYPE_CHECKING:
    from promptomatix.metrics import EvalReport
    from promptomatix.metrics.evaluator import ExampleRecord
    from promptomatix.task.models import TaskSpec


def records_score(records: Sequence[ExampleRecord], label_field: str | None) -> float:
    """The selection score of already-scored records (`EvalReport.primary`: for classification under the built-in
    metric, balanced accuracy)."""
    from promptomatix.metrics import Evaluator

    if not records:
        return 0.0
    return selection_score(Evaluator(n_bootstrap=0).summarize(records, label_field))


def subset(report: EvalReport, keep: set[int]) -> list[ExampleRecord]:
    return [r for r in report.records if r.index in keep]


def rows_without_demos(spec: TaskSpec, rows: Sequence[dict[str, Any]], demos: Sequence[dict[str, Any]]) -> set[int]:
    """Indices of `rows` that are not one of the demos: a demo row scored against itself is a leak."""
    used = {row_key(spec, d) for d in demos}  # the data's dedup key: same normalized inputs = same row
    return {i for i, r in enumerate(rows) if row_key(spec, r) not in used}


#: A finalist that lost any compared row needs this one-sided sign-test p-value (or less) to be kept.
EVIDENCE_P = 0.1


@dataclass(frozen=True)
class Evidence:
    """Row-by-row comparison of a finalist with the initial prompt on the same rows: the counts, and the rows'
    differences (finalist minus initial, ties left out) when they are known."""

    wins: int
    losses: int
    diffs: tuple[float, ...] = ()

    @property
    def graded(self) -> bool:
        """Whether the differences differ in size (else each row is a win or a loss of one size: a sign test)."""
        return len({round(abs(d), 9) for d in self.diffs}) > 1

    @property
    def p_value(self) -> float:
        """P(the finalist does at least this much better | each row's difference is as likely either way)."""
        if self.graded:
            from promptomatix.metrics.paired_stats import sign_flip_p

            return sign_flip_p(self.diffs, seed=0, alternative="greater")
        from scipy import stats  # the exact binomial test the held-out verdict uses, one-sided here

        n = self.wins + self.losses
        return float(stats.binomtest(self.wins, n, 0.5, alternative="greater").pvalue) if n else 1.0

    @property
    def enough(self) -> bool:
        return self.losses == 0 or self.p_value <= EVIDENCE_P

    def __str__(self) -> str:
        rows = "row" if self.wins == 1 else "rows"
        test = "permutation test" if self.graded else "sign test"
        return f"{self.wins} {rows} better, {self.losses} worse ({test} p = {self.p_value:.2g})"


def evidence(pairs: Iterable[tuple[float, float | None]]) -> Evidence:
    """Wins, losses and differences of a finalist over the initial prompt from (finalist's, initial's) raw scores
    per row; a row the initial prompt has no score for is skipped."""
    diffs = tuple(ours - theirs for ours, theirs in pairs if theirs is not None and abs(ours - theirs) > 1e-9)
    return Evidence(sum(d > 0 for d in diffs), sum(d < 0 for d in diffs), diffs)
