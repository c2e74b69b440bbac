"""Row checks shared by user data and synthetic data, so both obey the same spec and dedup rule."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from promptomatix.errors import DataError
from promptomatix.task.models import TaskSpec
from promptomatix.task.task_types import label_kind

__all__ = [
    "HELD_OUT_REPEAT",
    "HeldOut",
    "SourceRow",
    "check_row",
    "describe_places",
    "label_counts",
    "normalize_text",
    "row_key",
    "same_as_test_error",
    "validate_rows",
]

#: Why a train/valid row is dropped when a held-out test row has the same input (it would leak the test).
HELD_OUT_REPEAT = "same input as a held-out test row"

_SPACE = re.compile(r"\s+")
_SPACE_BEFORE = re.compile(r"\s+([,.;:!?])(?=\s|$)")  # "great , film" is "great, film"
_EDGES = re.compile(r"^[\s\"'`]+|[\s\"'`.,;:!?]+$")  # surrounding quotes, closing sentence punctuation
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


class SourceRow(dict[str, Any]):
    """A row read from a file that remembers where (source "reviews.csv", place "line 4"), so a drop later on
    (a duplicate, a label outside the label set) can still name the line."""

    __slots__ = ("place", "source")

    def __init__(self, data: dict[str, Any], source: str, place: str) -> None:
        super().__init__(data)
        self.source = source
        self.place = place

    def __reduce__(self) -> tuple[Any, ...]:  # copy/deepcopy/pickle keep the origin
        return (SourceRow, (dict(self), self.source, self.place))


def describe_places(places: list[str], limit: int = 8) -> str:
    """["line 4", "line 9"] -> "lines 4, 9"; rows of several files by file: "a.csv lines 2, 5; b.csv line 3"; a
    long list ends in "… (+N more)"."""
    if not places:
        return ""
    total: dict[str, int] = {}
    for p in places:
        head = p.rpartition(" ")[0]
        total[head] = total.get(head, 0) + 1
    groups: dict[str, list[str]] = {}
    for p in places[:limit]:
        head, _, num = p.rpartition(" ")
        groups.setdefault(head, []).append(num)
    shown = "; ".join(
        f"{head}{'s' if total[head] > 1 else ''} {', '.join(nums)}" if head else ", ".join(nums)
        for head, nums in groups.items()
    )
    return shown + (f" … (+{len(places) - limit} more)" if len(places) > limit else "")


def normalize_text(value: Any) -> str:
    """Dedup key for text: case, spacing, curly quotes, surrounding quotes and the closing punctuation
    ("Great film!" = "great film") do not make a new example.

    Punctuation inside the text is kept: it carries meaning in math, code and ratings ("What is 2+3?" and
    "What is 2-3?", `a*b` and `a/b`, "3/5" and "3.5" are different inputs), so stripping it merged distinct rows
    and called them "the same input with another output".
    """
    text = unicodedata.normalize("NFKC", str(value)).casefold().translate(_QUOTES)
    text = _SPACE_BEFORE.sub(r"\1", _SPACE.sub(" ", text))
    return _EDGES.sub("", text)


def row_key(spec: TaskSpec, row: dict[str, Any]) -> str:
    """Two rows with the same normalized inputs are duplicates, whatever their outputs say."""
    return "\x1f".join(normalize_text(row.get(name, "")) for name in spec.input_names)


def _is_nan(value: Any) -> bool:
    """pandas gives NaN for a blank cell (`str` of it, "nan", would become a value, and a class)."""
    return isinstance(value, float) and math.isnan(value)


def check_row(spec: TaskSpec, row: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(clean row, None) or (None, reason). Clean rows hold exactly the spec's fields, typed and canonical."""
    if not isinstance(row, dict):
        return None, "not an object"
    multi = label_kind(spec.task_type) == "multi"
    clean: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in row:
            return None, f"missing field '{f.name}'"
        value = row[f.name]
        if value is None or (isinstance(value, str) and not value.strip()) or _is_nan(value):
            return None, f"empty field '{f.name}'"
        if f.labels and multi:
            items = value if isinstance(value, list) else str(value).split(",")
            canon = [f.canonical_label(i) for i in items if str(i).strip()]
            if not canon or any(c is None for c in canon):
                return None, "label not in label set"
            clean[f.name] = ", ".join(dict.fromkeys(c for c in canon if c))
            continue
        try:
            value = f.coerce(value)
        except ValueError:
            return None, f"field '{f.name}' is not {f.type}"
        if f.labels:
            value = f.canonical_label(value)
            if value is None:
                return None, "label not in label set"
        clean[f.name] = value
    return clean, None


@dataclass
class HeldOut:
    """Where each held-out test row came from, and which test rows other sources repeated, so a dropped train row
    is named as a repeat of the test (with the test's lines), not as a plain duplicate."""

    places: dict[str, str] = field(default_factory=dict)  # row key -> "test.csv line 5"
    hits: dict[str, list[str]] = field(default_factory=dict)  # source of a dropped row -> the test rows it repeats


def validate_rows(
    spec: TaskSpec,
    rows: Iterable[Any],
    *,
    seen: dict[str, tuple[Any, ...]] | None = None,
    places: dict[tuple[str, str], list[str]] | None = None,
    held_out: HeldOut | None = None,
    is_test: bool = False,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Keep valid, new rows; count every dropped row by reason. `seen` carries dedup keys (and the kept row's
    outputs) across sources: a repeated input whose output differs is named as such, not as a plain duplicate.

    `places`, when given, collects where each dropped row came from, keyed by (source, reason): a file's name
    and "line 4", or ("", "row 3") for rows passed in memory, so the report can name them. `held_out` records the
    test rows (`is_test`) and names a later row with a test row's input as HELD_OUT_REPEAT.
    """
    seen = {} if seen is None else seen
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for i, row in enumerate(rows, 1):
        clean, reason = check_row(spec, row)
        key = row_key(spec, clean) if clean is not None else ""
        if clean is not None and (first := seen.get(key)) is not None:
            reason = _repeat_reason(spec, clean, first, key, held_out, getattr(row, "source", ""))
            clean = None
        if clean is None:
            reason = reason or "invalid"
            dropped[reason] += 1
            if places is not None:
                places.setdefault((getattr(row, "source", ""), reason), []).append(_place(row, i, "row"))
            continue
        seen[key] = _outputs(spec, clean)
        if is_test and held_out is not None:
            held_out.places[key] = _place(row, i, "test row")
        kept.append(clean)
    return kept, dropped


def _place(row: Any, i: int, what: str) -> str:
    """Where a row is: "line 4" in its file ("test.csv line 4" for a test row), else "row 4" (rows in memory)."""
    place = getattr(row, "place", None)
    if place is None:
        return f"{what} {i}"
    return f"{row.source} {place}" if what == "test row" and getattr(row, "source", "") else place


def _repeat_reason(
    spec: TaskSpec, clean: dict[str, Any], first: tuple[Any, ...], key: str, held_out: HeldOut | None, source: str
) -> str:
    """Why a row whose input was seen before is dropped: it repeats a held-out test row, or an earlier row."""
    if held_out is not None and key in held_out.places:
        held_out.hits.setdefault(source, []).append(held_out.places[key])
        return HELD_OUT_REPEAT
    if first != _outputs(spec, clean):
        return "same input as an earlier row, another output (the first kept)"
    return "duplicate"


def same_as_test_error(name: str, places: dict[tuple[str, str], list[str]]) -> DataError:
    """Every usable row of a train/valid source is a held-out test row: the same file given twice, most likely."""
    source = next((s for s, reason in places if reason == HELD_OUT_REPEAT and s), f"the {name} rows")
    return DataError(
        f"every usable row of {source} is also a held-out test row: the data and the test file hold the same rows",
        hint="pass a test file with other rows (--local-test-data-path), or leave it out to hold out part of --data",
    )


def _outputs(spec: TaskSpec, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(normalize_text(row.get(name, "")) for name in spec.output_names)


def label_counts(rows: Iterable[dict[str, Any]], field: str | None) -> dict[str, int]:
    if not field:
        return {}
    return dict(Counter(str(r.get(field)) for r in rows))
