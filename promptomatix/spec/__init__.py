"""Task specs: what the task is, its fields and labels, and what was assumed. Cheap to import (no dspy)."""

from __future__ import annotations

from promptomatix.spec.heuristics import discover_labels, extract_labels, guess_task_type
from promptomatix.spec.infer import estimate_spec_calls, infer_task_spec
from promptomatix.spec.models import FieldSpec, FieldType, TaskSpec, coerce_value, normalize_label
from promptomatix.spec.overrides import SpecOverrides
from promptomatix.spec.parsing import parse_json_loose
from promptomatix.spec.task_types import TaskType

__all__ = [
    "FieldSpec",
    "FieldType",
    "SpecOverrides",
    "TaskSpec",
    "TaskType",
    "coerce_value",
    "discover_labels",
    "estimate_spec_calls",
    "extract_labels",
    "guess_task_type",
    "infer_task_spec",
    "normalize_label",
    "parse_json_loose",
]
