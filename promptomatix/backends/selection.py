"""Selection helpers for the meta backend: fair comparisons on shared rows, and the final confirmation.

Why a confirmation stage: picking the best of a dozen candidates on a dozen validation rows rewards luck (a
junk instruction won on 12 rows and lost on the test split). The finalists are therefore re-scored on the
train rows too, excluding each candidate's own demos, and compared with the initial prompt on exactly the same
rows; a finalist must beat the initial prompt there as well as on valid.

Why paired evidence on top of the margin: a mean over two dozen rows of a graded metric moves with one or two rows.
On squad a finalist that beat the initial prompt by 0.04 F1 there, on 4 rows against 1, lost on 100 fresh rows by
a significant margin (benchmarks/RESULTS.md §7). So a finalist must also win more rows than luck would give it
(one-sided sign test, p <= EVIDENCE_P, ties dropped) or lose none (a shorter prompt at equal quality).
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
    """Row-by-row comparison of a finalist with the initial prompt on the same rows."""

    wins: int
    losses: int

    @property
    def p_value(self) -> float:
        """P(at least `wins` of the rows that differ go the finalist's way | each is a coin flip)."""
        from scipy import stats  # the exact binomial test the held-out verdict uses, one-sided here

        n = self.wins + self.losses
        return float(stats.binomtest(self.wins, n, 0.5, alternative="greater").pvalue) if n else 1.0

    @property
    def enough(self) -> bool:
        return self.losses == 0 or self.p_value <= EVIDENCE_P

    def __str__(self) -> str:
        rows = "row" if self.wins == 1 else "rows"
        return f"{self.wins} {rows} better, {self.losses} worse (sign test p = {self.p_value:.2g})"


def evidence(pairs: Iterable[tuple[float, float | None]]) -> Evidence:
    """Wins and losses of a finalist over the initial prompt from (finalist's, initial's) raw scores per row; a row
    the initial prompt has no score for is skipped."""
    wins = losses = 0
    for ours, theirs in pairs:
        if theirs is None:
            continue
        wins += ours > theirs + 1e-9
        losses += ours < theirs - 1e-9
    return Evidence(wins, losses)
