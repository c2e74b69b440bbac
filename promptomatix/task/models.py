"""The task spec: what the task is, which fields go in and out, and what was assumed rather than given.

Users read and write these (sessions, `--spec`), so the models forbid unknown keys: a typo must fail loudly.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptomatix.task.task_types import label_kind, normalize_task_type_name

FieldType = Literal["str", "int", "float", "bool", "list", "json"]

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def normalize_label(value: Any) -> str:
    """Comparison key for labels: case, surrounding quotes/spaces and a trailing period do not matter."""
    return str(value).strip().strip("\"'`").strip().rstrip(".").strip().lower()


class FieldSpec(BaseModel):
    """One input or output field. A classification output carries its closed label set."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: FieldType = "str"
    description: str = ""
    labels: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name_not_empty(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("field name must not be empty")
        return v

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        out: list[str] = []
        seen: set[str] = set()
        for label in v:
            label = str(label).strip()
            key = normalize_label(label)
            if label and key not in seen:
                seen.add(key)
                out.append(label)
        return out or None

    def canonical_label(self, value: Any) -> str | None:
        """The label as spelled in the label set, or None when `value` is not one of them."""
        if not self.labels:
            return None
        key = normalize_label(value)
        for label in self.labels:
            if normalize_label(label) == key:
                return label
        return None

    def coerce(self, value: Any) -> Any:
        """Convert a raw value (CSV text, model JSON) to this field's type; ValueError says what's wrong."""
        return coerce_value(value, self.type)

    def json_schema(self) -> dict[str, Any]:
        """The JSON-schema fragment a model must follow to produce this field."""
        schema: dict[str, Any]
        if self.labels:
            schema = {"type": "string", "enum": list(self.labels)}
        else:
            schema = {
                "str": {"type": "string"},
                "int": {"type": "integer"},
                "float": {"type": "number"},
                "bool": {"type": "boolean"},
                "list": {"type": "array"},
                "json": {},
            }[self.type]
        if self.description:
            schema = {**schema, "description": self.description}
        return schema


def coerce_value(value: Any, type_: str) -> Any:
    """Shared by loaders and synthetic validation so a field means the same thing whatever its source."""
    if type_ == "str":
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        if value is None:
            raise ValueError("expected text, got null")
        return str(value)
    if type_ == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            return int(value)
        raise ValueError(f"expected an integer, got {value!r}")
    if type_ == "float":
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {value!r}")
    if type_ == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise ValueError(f"expected true/false, got {value!r}")
    if type_ == "list":
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        raise ValueError(f"expected a list, got {value!r}")
    if type_ == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"expected JSON, got {value[:40]!r}") from exc
        return value
    raise ValueError(f"unknown field type {type_!r}")


class TaskSpec(BaseModel):
    """All later stages need to know about the task; `given` and `assumptions` keep inference honest."""

    model_config = ConfigDict(extra="forbid")

    description: str
    task_type: str  # a registered task type's name (promptomatix.task.task_types)
    input_fields: list[FieldSpec] = Field(min_length=1)
    output_fields: list[FieldSpec] = Field(min_length=1)
    output_format: str | None = None
    constraints: list[str] = Field(default_factory=list)
    sample_rows: list[dict[str, Any]] = Field(default_factory=list)
    initial_prompt: str = ""
    assumptions: list[str] = Field(default_factory=list)
    given: list[str] = Field(default_factory=list)

    @field_validator("task_type", mode="before")
    @classmethod
    def _task_type_name(cls, v: Any) -> Any:
        """Canonical name; aliases resolve. Unknown names are kept (a saved session may name an uninstalled
        plugin's type; scoring it then fails with the list of known types)."""
        return normalize_task_type_name(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _names_unique(self) -> TaskSpec:
        names = [f.name for f in self.input_fields + self.output_fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"field names must be unique across inputs and outputs: {', '.join(dupes)}")
        return self

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.input_fields]

    @property
    def output_names(self) -> list[str]:
        return [f.name for f in self.output_fields]

    @property
    def fields(self) -> list[FieldSpec]:
        return [*self.input_fields, *self.output_fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def label_field(self) -> str | None:
        """The output field whose values are class labels (used for stratifying and balancing)."""
        kind = label_kind(self.task_type)
        if kind is None:
            return None
        for f in self.output_fields:
            if f.labels:
                return f.name
        return self.output_fields[0].name if kind == "single" else None

    @property
    def labels(self) -> list[str] | None:
        name = self.label_field
        return self.field(name).labels if name else None
