"""The typed state a run's stages read and fill in, one stage after another."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptomatix.backends.base import BackendResult, RunContext
    from promptomatix.backends.prompt import PromptCandidate
    from promptomatix.data import DataSplits
    from promptomatix.held_out import HeldOut
    from promptomatix.sessions.models import Usage
    from promptomatix.task import TaskSpec


@dataclass
class RunState:
    """spec → data → search → held-out → result. A refine or resume starts with spec, data and `initial` filled."""

    spec: TaskSpec | None = None
    splits: DataSplits | None = None
    data_report: dict[str, Any] = field(default_factory=dict)
    user_rows: dict[str, Any] | None = None  # the rows the user gave, by role (data stage)
    initial: PromptCandidate | None = None  # what the search starts from
    human_feedback: list[str] = field(default_factory=list)
    feedback_ids: list[str] = field(default_factory=list)
    parent_version: int | None = None  # refine: the version it started from
    parent_prompt: str | None = None  # ... and its prompt text
    ctx: RunContext | None = None  # search: what the backend was handed (held-out scoring reuses it)
    result: BackendResult | None = None
    held: HeldOut | None = None
    notes: list[str] = field(default_factory=list)
    planned_sizes: tuple[int, int, int] | None = None  # dry run: train/valid/test once the synthetic rows exist
    usable_user_rows: int | None = None  # dry run: the --data rows validation keeps (what synthetic rows top up)
    spent_before: Usage | None = None  # resume: what the run spent before it stopped (counts against its limits)

    def need(self, name: str) -> Any:
        """A field an earlier stage must have filled (a stage run out of order is a bug, said plainly)."""
        value = getattr(self, name)
        if value is None:
            from promptomatix.errors import SessionError

            raise SessionError(f"the run has no {name} yet", hint="run the stages in order: spec, data, search")
        return value
