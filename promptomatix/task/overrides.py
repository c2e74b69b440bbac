"""Spec parts a user gives (CLI flags, upstream kwargs), parsed once so inference can trust them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from promptomatix.errors import ConfigurationError
from promptomatix.task.models import FieldSpec
from promptomatix.task.task_types import get_task_type


class SpecOverrides(BaseModel):
    """Spec parts the user gave (CLI flags or upstream kwargs). None means "not given: infer it"."""

    model_config = ConfigDict(extra="forbid")

    task_type: str | None = None
    task_description: str | None = None
    input_fields: list[str | FieldSpec] | None = None
    output_fields: list[str | FieldSpec] | None = None
    labels: list[str] | None = None
    output_format: str | None = None
    sample_data: list[dict[str, Any]] | str | None = None
    initial_prompt: str | None = None
    constraints: list[str] | None = None

    @field_validator("input_fields", "output_fields", "labels", "constraints", mode="before")
    @classmethod
    def _split_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()] if "\n" not in v else [v]
        return v

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> SpecOverrides:
        """Pick the spec kwargs out of upstream-style `process_input(**kwargs)`; other keys are not ours."""
        return cls(**{k: v for k, v in kwargs.items() if k in cls.model_fields and v not in (None, "", [])})


def parse_task_type(value: str) -> str:
    """The registered name of a task type or alias; an unknown one is a ConfigurationError listing the known."""
    return get_task_type(value).name


def parse_sample_data(value: list[dict[str, Any]] | str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"sample_data is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if isinstance(value, dict):
            value = [value]
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ConfigurationError("sample_data must be a list of objects (one per example row)")
    return [dict(r) for r in value]


def as_fields(items: Sequence[str | FieldSpec]) -> list[FieldSpec]:
    return [f if isinstance(f, FieldSpec) else FieldSpec(name=str(f)) for f in items]
