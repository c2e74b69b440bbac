"""Row checks shared by user data and synthetic data, so both obey the same spec and dedup rule."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from promptomatix.spec.models import TaskSpec
from promptomatix.spec.task_types import TaskType

_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def normalize_text(value: Any) -> str:
    """Dedup key for text: case, punctuation and spacing differences do not make a new example."""
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return _SPACE.sub(" ", _PUNCT.sub(" ", text)).strip()


def row_key(spec: TaskSpec, row: dict[str, Any]) -> str:
    """Two rows with the same normalized inputs are duplicates, whatever their outputs say."""
    return "\x1f".join(normalize_text(row.get(name, "")) for name in spec.input_names)


def check_row(spec: TaskSpec, row: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(clean row, None) or (None, reason). Clean rows hold exactly the spec's fields, typed and canonical."""
    if not isinstance(row, dict):
        return None, "not an object"
    multi = spec.task_type == TaskType.MULTI_LABEL_CLASSIFICATION
    clean: dict[str, Any] = {}
    for f in spec.fields:
        if f.name not in row:
            return None, f"missing field '{f.name}'"
        value = row[f.name]
        if value is None or (isinstance(value, str) and not value.strip()):
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
    spec: TaskSpec, rows: Iterable[Any], *, seen: set[str] | None = None
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Keep valid, new rows; count every dropped row by reason. `seen` carries dedup keys across sources."""
    seen = set() if seen is None else seen
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for row in rows:
        clean, reason = check_row(spec, row)
        if clean is None:
            dropped[reason or "invalid"] += 1
            continue
        key = row_key(spec, clean)
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(clean)
    return kept, dropped


def label_counts(rows: Iterable[dict[str, Any]], field: str | None) -> dict[str, int]:
    if not field:
        return {}
    return dict(Counter(str(r.get(field)) for r in rows))
