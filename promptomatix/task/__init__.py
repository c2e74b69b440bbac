"""Task specs and task types: what the task is, its fields and labels, and what was assumed. Cheap to import (no dspy)."""

from __future__ import annotations

from promptomatix.task.heuristics import discover_labels, extract_labels, guess_task_type
from promptomatix.task.infer import estimate_spec_calls, infer_task_spec
from promptomatix.task.models import FieldSpec, FieldType, TaskSpec, coerce_value, normalize_label
from promptomatix.task.overrides import SpecOverrides
from promptomatix.task.parsing import parse_json_loose
from promptomatix.task.task_types import TaskType, TaskTypeDef, get_task_type, known_task_types

__all__ = [
    "FieldSpec",
    "FieldType",
    "SpecOverrides",
    "TaskSpec",
    "TaskType",
    "TaskTypeDef",
    "coerce_value",
    "discover_labels",
    "estimate_spec_calls",
    "extract_labels",
    "get_task_type",
    "guess_task_type",
    "infer_task_spec",
    "known_task_types",
    "normalize_label",
    "parse_json_loose",
]
