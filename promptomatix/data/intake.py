"""The data builder's intake: every source validated against one shared `seen` set, test rows first, with the
account of what was skipped and why. The dry run uses it too (`builder.validate_sources`), so it keeps, skips and
refuses exactly what the run does, with the same words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from promptomatix.data.sampling import sample_rows
from promptomatix.data.splits import DEFAULT_CAPS, Size
from promptomatix.data.validate import HELD_OUT_REPEAT, HeldOut, describe_places, same_as_test_error, validate_rows
from promptomatix.errors import DataError, DataUsageError
from promptomatix.task.models import TaskSpec

if TYPE_CHECKING:
    from promptomatix.data.builder import DataReport

Row = dict[str, Any]

#: Why a row is dropped when its label is outside the label set (validate.check_row's wording).
LABEL_MISMATCH = "label not in label set"
#: Reasons that mean "this source is a copy of the test": the same file given twice.
_TEST_COPY = {HELD_OUT_REPEAT, "duplicate"}


@dataclass
class Intake:
    """Validates every source against one shared `seen` set, so the first source taken keeps a duplicated row."""

    spec: TaskSpec
    report: DataReport
    label: str | None
    seed: int
    sizes: dict[str, Any]
    seen: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    held_out: HeldOut = field(default_factory=HeldOut)
    reasons: Counter[str] = field(default_factory=Counter)  # validation's own reasons (not the loaders')
    given: list[Row] = field(default_factory=list)  # every row given, for the labels hint

    def take(self, name: str, rows: Sequence[Row] | None) -> list[Row]:
        """The usable rows of one source; each skip is counted and noted with its places, for the report."""
        report = self.report
        places: dict[tuple[str, str], list[str]] = {}
        report.notes.extend(n for n in getattr(rows, "notes", ()) if n not in report.notes)  # the loader's account
        self.held_out.hits.clear()
        self.given.extend(rows or ())
        kept, bad = validate_rows(self.spec, rows or [], seen=self.seen, places=places, held_out=self.held_out,
                                  is_test=name == "test")  # fmt: skip
        if rows:
            report.sources[name] = len(kept)
        self.dropped.update({f"{name}: {reason}": count for reason, count in bad.items()})
        self.reasons.update(bad)
        for (source, reason), where in places.items():
            n = len(where)
            what = source or f"{name} rows"
            if reason == HELD_OUT_REPEAT:  # name the test rows, so the user can find both copies
                reason += f" ({describe_places(self.held_out.hits.get(source, []))})"
            report.notes.append(f"{what}: {n} row{'s' if n != 1 else ''} skipped ({describe_places(where)}: {reason})")
        # The same file given twice only when every dropped row repeats the test (or itself): rows dropped for
        # another reason (a label outside the label set) are the news, said by `raise_no_rows`.
        if rows and not kept and bad.get(HELD_OUT_REPEAT) and set(bad) <= _TEST_COPY:
            raise same_as_test_error(name, places)
        if name in ("train", "valid", "test") and rows is not None:
            kept = cap_given(name, kept, self.sizes.get(name), self.label, self.seed, report)
        return kept

    def refuse(self, labels_given: bool = False) -> NoReturn:
        """No usable row: the builder's error, with the labels hint when labels did it. Every skip a label outside
        a label set the user gave (`--labels`): a wrong command line, exit 2."""
        hint = labels_hint(self.spec, self.label, self.given, self.dropped)
        if labels_given and hint and self.reasons and set(self.reasons) == {LABEL_MISMATCH}:
            try:
                raise_no_rows(self.report, self.dropped, hint)
            except DataError as e:
                raise DataUsageError(e.message, hint=e.hint) from None
        raise_no_rows(self.report, self.dropped, hint)


def raise_no_rows(report: DataReport, dropped: Counter[str], hint: str | None = None) -> NoReturn:
    """No usable row at all: the skip notes say why better than the bare counts, so they lead when there are any."""
    if skips := skip_summary(report):
        raise DataError(f"no usable data rows: {skips}", hint=hint or "fix those rows, or check "
                        "--input-fields/--output-fields")  # fmt: skip
    raise DataError(
        "no usable data rows" + (f" (skipped: {dict(dropped)})" if dropped else ""),
        hint="pass --data FILE, or a teacher model to generate examples",
    )


def labels_hint(spec: TaskSpec, label: str | None, rows: Sequence[Row], dropped: Counter[str]) -> str | None:
    """When rows were dropped for labels outside the label set: the set, the data's labels, and the flag to fix."""
    if label is None or not spec.labels or not any(k.endswith(LABEL_MISMATCH) for k in dropped):
        return None
    found = list(dict.fromkeys(str(r.get(label)).strip() for r in rows if isinstance(r, dict) and r.get(label)))
    shown = ", ".join(found[:8]) + (" …" if len(found) > 8 else "")
    return (f"the label set is {', '.join(spec.labels)} and the data's labels are {shown}: pass --labels with the "
            "data's labels, or leave --labels out")  # fmt: skip


def skip_summary(report: DataReport, most: int = 2) -> str:
    """The skip notes for an error message, which is all a user sees when the run stops."""
    skips = [n for n in report.notes if " skipped (" in n]
    more = f"; and {len(skips) - most} more kinds of skipped rows" if len(skips) > most else ""
    return "; ".join(skips[:most]) + more


def cap_given(name: str, rows: list[Row], size: Size, label: str | None, seed: int, report: DataReport) -> list[Row]:
    """A given split larger than its cap (or explicit count) is sampled down, seeded and stratified, and said so."""
    cap = size if isinstance(size, int) and size > 0 else DEFAULT_CAPS[name]
    if len(rows) <= cap:
        return rows
    kept = sample_rows(rows, cap, label_field=label, seed=seed)
    flag = f"--{name}-data-size"
    report.notes.append(f"given {name} rows: sampled {len(kept):,} of {len(rows):,} (cap; change with {flag})")
    return kept
