"""The typed best-so-far a backend hands the run, and the typed run state kept in `session.progress`.

Backends report their best-so-far through `RunContext.save_progress` (a `Checkpoint`, or the legacy dict shape the
meta backend still builds, validated into one). The checkpoint carries everything needed to turn it into a version
without knowing which backend made it: the prompt as the model sees it and, for DSPy, the program JSON. So Ctrl-C
saves a DSPy run with its own rendering and program, and `sessions export --format dspy` works on it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptomatix.sessions.models import Usage


class BestSoFar(BaseModel):
    """The best candidate measured so far, with its valid scores."""

    model_config = ConfigDict(extra="ignore")

    instructions: str
    demos: list[dict[str, Any]] = Field(default_factory=list)
    format_line: str | None = None
    origin: str = "initial"
    valid_raw: float | None = None
    valid_penalized: float | None = None
    prompt: str | None = None  # as the model sees it (None: rendered from the parts with the task spec)
    program_json: dict[str, Any] | None = None  # DSPy: the program's saved state


class Checkpoint(BaseModel):
    """A backend's best-so-far after a round (round 0: the measured initial prompt)."""

    model_config = ConfigDict(extra="ignore")

    round: int = 0
    best: BestSoFar
    initial_valid_raw: float | None = None
    initial_valid_penalized: float | None = None

    @classmethod
    def of(cls, state: Checkpoint | dict[str, Any]) -> Checkpoint:
        return state if isinstance(state, Checkpoint) else cls.model_validate(state)


class RunProgress(BaseModel):
    """`session.progress` while a run is unfinished: who runs it, what it started from, its checkpoint.

    What it started from (initial candidate, feedback, parent version) lets `resume` continue the same run. Reads
    the layout older sessions were saved with (the checkpoint's keys at the top level) too.
    """

    model_config = ConfigDict(extra="ignore")

    owner: dict[str, Any] | None = None
    initial: dict[str, Any] | None = None
    human_feedback: list[str] = Field(default_factory=list)
    feedback_ids: list[str] = Field(default_factory=list)
    parent_version: int | None = None
    backend: str | None = None
    checkpoint: Checkpoint | None = None
    saved_version: int | None = None
    #: what the run spent in its earlier attempts (each Ctrl-C or failure adds its own): `resume` counts it
    #: against the run's limits (run/carried.py)
    spent_before: Usage | None = None
    #: the run's limits as it was given them (refine's own, or a resume's): a later resume continues with them
    limits: dict[str, int | float | None] | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("best") and not data.get("checkpoint"):
            keys = ("round", "best", "initial_valid_raw", "initial_valid_penalized")
            data = {**data, "checkpoint": {k: data[k] for k in keys if k in data}}
        return data

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
