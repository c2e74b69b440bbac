"""Row checks shared by user data and synthetic data, so both obey the same spec and dedup rule."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from promptomatix.task.models import TaskSpec
from promptomatix.task.task_types import label_kind

__all__ = ["SourceRow", "check_row", "describe_places", "label_counts", "normalize_text", "row_key", "validate_rows"]

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


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
    """Dedup key for text: case, punctuation and spacing differences do not make a new example."""
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


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


def validate_rows(
    spec: TaskSpec,
    rows: Iterable[Any],
    *,
    seen: dict[str, tuple[Any, ...]] | None = None,
    places: dict[tuple[str, str], list[str]] | None = None,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Keep valid, new rows; count every dropped row by reason. `seen` carries dedup keys (and the kept row's
    outputs) across sources: a repeated input whose output differs is named as such, not as a plain duplicate.

    `places`, when given, collects where each dropped row came from, keyed by (source, reason): a file's name
    and "line 4", or ("", "row 3") for rows passed in memory, so the report can name them.
    """
    seen = {} if seen is None else seen
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for i, row in enumerate(rows, 1):
        clean, reason = check_row(spec, row)
        if clean is not None and (first := seen.get(row_key(spec, clean))) is not None:
            differs = first != _outputs(spec, clean)
            reason = "same input as an earlier row, another output (the first kept)" if differs else "duplicate"
            clean = None
        if clean is None:
            reason = reason or "invalid"
            dropped[reason] += 1
            if places is not None:
                key = (getattr(row, "source", ""), reason)
                places.setdefault(key, []).append(getattr(row, "place", None) or f"row {i}")
            continue
        seen[row_key(spec, clean)] = _outputs(spec, clean)
        kept.append(clean)
    return kept, dropped


def _outputs(spec: TaskSpec, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(normalize_text(row.get(name, "")) for name in spec.output_names)


def label_counts(rows: Iterable[dict[str, Any]], field: str | None) -> dict[str, int]:
    if not field:
        return {}
    return dict(Counter(str(r.get(field)) for r in rows))
