"""Validators for teacher answers: each part is checked on its own and None means "unusable, fall back"."""

from __future__ import annotations

from typing import Any

from promptomatix.task.heuristics import safe_field_name
from promptomatix.task.models import FieldSpec

FIELD_TYPES = {"str", "int", "float", "bool", "list", "json"}
#: Names a small model copies from the question's JSON schema instead of naming a field: junk, fall back.
_SCHEMA_WORDS = {
    "input_fields", "output_fields", "input_field", "output_field", "fields", "field", "name", "type",
    "description", "labels", "task_type", "properties", "items", "string", "object", "array",
}  # fmt: skip


def teacher_fields(value: Any, taken: set[str]) -> list[FieldSpec] | None:
    """Field list from a teacher answer (strings or {name,type,description}); None when unusable."""
    if not isinstance(value, list):
        return None
    out: list[FieldSpec] = []
    for item in value[:6]:
        raw = item.get("name") if isinstance(item, dict) else item
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 40:
            continue
        name = safe_field_name(raw)
        if name in _SCHEMA_WORDS or name in taken or any(f.name == name for f in out):
            continue
        type_ = item.get("type") if isinstance(item, dict) else "str"
        desc = item.get("description") if isinstance(item, dict) else ""
        out.append(
            FieldSpec(
                name=name,
                type=type_ if type_ in FIELD_TYPES else "str",
                description=desc.strip()[:200] if isinstance(desc, str) else "",
            )
        )
    return out or None


def teacher_labels(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not 2 <= len(value) <= 50:
        return None
    labels = [str(v).strip() for v in value if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    if len(labels) != len(value) or any(not lab or len(lab) > 60 for lab in labels):
        return None
    return FieldSpec(name="x", labels=labels).labels if len(set(labels)) >= 2 else None


def valid_row(spec_fields: list[FieldSpec], row: Any) -> dict[str, Any] | None:
    if not isinstance(row, dict):
        return None
    out: dict[str, Any] = {}
    for f in spec_fields:
        value = row.get(f.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        try:
            value = f.coerce(value)
        except ValueError:
            return None
        if f.labels:
            value = f.canonical_label(value)
            if value is None:
                return None
        out[f.name] = value
    return out

