"""Selection helpers for the meta backend: fair comparisons on shared rows, and the final confirmation.

Why a confirmation stage: picking the best of a dozen candidates on a dozen validation rows rewards luck (a
junk instruction won on 12 rows and lost on the test split). The finalists are therefore re-scored on the
train rows too, excluding each candidate's own demos, and compared with the initial prompt on exactly the same
rows; a finalist must beat the initial prompt there as well as on valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from promptomatix.backends.base import selection_score
from promptomatix.data.validate import row_key

if TYPE_CHECKING:
    from promptomatix.metrics import EvalReport
    from promptomatix.metrics.evaluator import ExampleRecord
    from promptomatix.task.models import TaskSpec


def records_score(records: Sequence[ExampleRecord], label_field: str | None) -> float:
    """The selection score (balanced accuracy for classification) of already-scored records."""
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
