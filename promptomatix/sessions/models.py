"""The session file's data model (schema version 1).

A session is everything needed to understand, resume or continue an optimization: the task, the data
(or where it lives), every prompt version with how it scored and what it cost, and the feedback given
on those versions. `task_spec` and `data` are plain dicts so this package does not depend on the spec
package; the caller converts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from promptomatix.errors import NotFoundError, SessionError
from promptomatix.sessions.ids import ID_EXAMPLE, is_valid_id
from promptomatix.sessions.scale import selection_score

SCHEMA_VERSION = 1
MAX_EVENTS = 200  # the event log is a breadcrumb trail, not a full log; oldest entries are dropped
CREDENTIALS_STRIPPED = "credentials_stripped"  # event: a URL's credentials were dropped before saving

SessionStatus = Literal["created", "running", "interrupted", "completed", "failed"]
FeedbackSource = Literal["human", "generated"]
FeedbackStatus = Literal["open", "applied", "dismissed"]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _aware(cls, v: Any) -> Any:
        """A time without a zone (a hand edit) is UTC, as every time we write: naive and aware times cannot be
        compared, and one naive `created_at` made `sessions list` fail for every session."""
        return v.replace(tzinfo=timezone.utc) if isinstance(v, datetime) and v.tzinfo is None else v


class Usage(_Model):
    """Model usage of one step. `cost_usd` is None when the price is unknown (it is not 0 then)."""

    calls: int = Field(default=0, ge=0)
    cached_calls: int = Field(default=0, ge=0)
    failed_calls: int = Field(default=0, ge=0)  # of `calls`: sent, but no answer came back (nothing paid)
    estimated_calls: int = Field(default=0, ge=0)  # of `calls`: the server sent no token counts; ours are estimates
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    cost_usd: float | None = Field(default=0.0, ge=0)
    seconds: float = Field(default=0.0, ge=0)

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        summed = {k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields if k != "cost_usd"}
        return Usage(**summed, cost_usd=cost)


class Score(_Model):
    """A validation score: the metric as measured, and after any length penalty used for selection."""

    raw: float | None = None
    penalized: float | None = None

    @property
    def selection(self) -> float | None:
        """The number candidates were ranked by: penalized when a penalty was applied, else raw."""
        return self.penalized if self.penalized is not None else self.raw


class TestScore(_Model):
    """Held-out test score with a confidence interval (so small differences are not over-read)."""

    __test__ = False  # not a pytest test class

    mean: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = Field(default=0, ge=0)


class PromptVersion(_Model):
    """One prompt produced in the session, numbered from 1; `parent` is the version it started from."""

    version: int = Field(ge=1)
    parent: int | None = None
    prompt: str  # exactly what the task model sees (rendered instructions + demos)
    instructions: str | None = None
    demos: list[dict[str, Any]] = Field(default_factory=list)
    backend: str
    settings: dict[str, Any] = Field(default_factory=dict)
    valid: Score | None = None
    test: TestScore | None = None
    # Scores of the starting prompt measured in the same run, for before/after reports.
    initial_valid: Score | None = None
    initial_test: TestScore | None = None
    usage: Usage = Field(default_factory=Usage)
    created_at: datetime = Field(default_factory=utcnow)
    duration_s: float | None = Field(default=None, ge=0)
    feedback_applied: list[str] = Field(default_factory=list)
    program_json: dict[str, Any] | None = None  # a saved DSPy program (`Module.dump_state()`)
    candidates: list[dict[str, Any]] = Field(default_factory=list)  # every candidate tried, with scores
    # The paired held-out comparison with the starting prompt (metrics.verdict.PairedVerdict, dumped).
    verdict: dict[str, Any] | None = None
    pareto: list[int] = Field(default_factory=list)  # ids of the candidates on the quality-vs-length front
    # Per held-out row: input, expected, got (both prompts), scores, feedback, error.
    test_examples: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("verdict")
    @classmethod
    def _readable_verdict(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        """A stored paired verdict must read back as one: a broken one is a corrupt file, named as such, not a
        crash of every page that lists the session."""
        if isinstance(v, dict) and "wins" in v:
            from promptomatix.metrics.verdict import PairedVerdict

            PairedVerdict.model_validate(v)
        return v


class FeedbackItem(_Model):
    """A comment on a prompt version: on a span of it (start/end), or on the whole prompt (general).

    `source="generated"` items come from a critic model reading failures; `details` can hold the
    evidence (example, expected, got). Status moves open -> applied (in version N) or dismissed.
    """

    id: str = Field(min_length=1, max_length=64)
    comment: str
    source: FeedbackSource = "human"
    text: str | None = None  # the quoted span, prompt[start:end]
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)
    version: int | None = None  # the version the feedback is about (None: given before any version)
    status: FeedbackStatus = "open"
    applied_in: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("comment")
    @classmethod
    def _comment_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("feedback comment is empty")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeedbackItem:
        if (self.start is None) != (self.end is None):
            raise ValueError("span feedback needs both start and end")
        if self.start is not None and self.end is not None:
            if self.start >= self.end:
                raise ValueError(f"span start {self.start} must be before end {self.end}")
            if self.text is None:
                # Length is not re-checked here: scrubbing a secret out of a span may change it.
                raise ValueError("span feedback needs the quoted text")
        if (self.status == "applied") != (self.applied_in is not None):
            raise ValueError("applied_in is set exactly when status is 'applied'")
        return self

    @property
    def kind(self) -> Literal["span", "general"]:
        return "span" if self.start is not None else "general"


_UNSET: Any = object()


class Session(_Model):
    """Everything about one optimization task; stored as `<root>/<id>/session.json`."""

    schema_version: int = SCHEMA_VERSION
    session_id: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Bumped on every save; a save from a stale copy is refused instead of silently losing writes.
    revision: int = Field(default=0, ge=0)
    status: SessionStatus = "created"
    description: str = ""  # one line for listings
    raw_input: str = ""  # what the user typed, verbatim
    task_spec: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)  # {"train": [rows], ...} or a reference {"path": ...}
    data_report: dict[str, Any] = Field(default_factory=dict)
    run_config: dict[str, Any] = Field(default_factory=dict)  # settings to resume with, secrets removed
    progress: dict[str, Any] = Field(default_factory=dict)  # written by backends: round, best so far...
    versions: list[PromptVersion] = Field(default_factory=list)
    feedback: list[FeedbackItem] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    #: every call the session's runs made, whatever their ending (failed, interrupted, kept, no change) and the
    #: generated feedback's; None in a session saved before this was recorded (its versions' usage is all it has)
    spent: Usage | None = None
    #: the highest feedback number (`fbN`) ever given: a deleted item's id is never given again (feedback_ids.py)
    feedback_seq: int = Field(default=0, ge=0)

    @field_validator("session_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not is_valid_id(value):
            raise ValueError(f"invalid session id {value!r}: ids look like {ID_EXAMPLE}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Session:
        seen: set[int] = set()
        for v in self.versions:
            if seen and v.version <= max(seen):
                raise ValueError(f"version numbers must increase (got {v.version} after {max(seen)})")
            if v.parent is not None and v.parent not in seen:
                raise ValueError(f"version {v.version} has parent {v.parent}, which is not an earlier version")
            seen.add(v.version)
        ids = [f.id for f in self.feedback]
        if len(ids) != len(set(ids)):
            raise ValueError("feedback ids must be unique")
        for f in self.feedback:
            for ref in (f.version, f.applied_in):
                if ref is not None and ref not in seen:
                    raise ValueError(f"feedback {f.id} refers to version {ref}, which does not exist")
        return self

    # --- versions -------------------------------------------------------------------------------

    def total_spent(self) -> Usage:
        """What the session cost so far: `spent`, or the sum of the versions' usage for an older session."""
        if self.spent is not None:
            return self.spent
        return sum((v.usage for v in self.versions), Usage())

    def add_spent(self, usage: Usage) -> None:
        """Count one run's (or one feedback generation's) calls into `spent`."""
        self.spent = self.total_spent() + usage

    def latest_version(self) -> PromptVersion | None:
        return self.versions[-1] if self.versions else None

    def get_version(self, number: int | None = None) -> PromptVersion:
        """Version `number`, or the latest when None; SessionError naming what exists otherwise."""
        if not self.versions:
            raise SessionError(f"session {self.session_id} has no prompt versions yet")
        if number is None:
            return self.versions[-1]
        for v in self.versions:
            if v.version == number:
                return v
        have = ", ".join(str(v.version) for v in self.versions)
        raise NotFoundError(f"session {self.session_id} has no version {number} (it has: {have})")

    def best_version(self) -> PromptVersion | None:
        """The version with the best valid selection score, all under the session's λ (scale.py); ties: the later."""
        scored = [(score, v.version, v) for v in self.versions if (score := selection_score(self, v)) is not None]
        return max(scored, key=lambda t: t[:2])[2] if scored else None

    def add_version(
        self,
        prompt: str,
        *,
        backend: str,
        parent: int | None = _UNSET,
        feedback_applied: list[str] | tuple[str, ...] = (),
        **fields: Any,
    ) -> PromptVersion:
        """Append the next version (parent: the latest by default); mark `feedback_applied` applied in it."""
        latest = self.latest_version()
        number = latest.version + 1 if latest else 1
        if parent is _UNSET:
            parent = latest.version if latest else None
        elif parent is not None:
            self.get_version(parent)
        items = [self.get_feedback(fid) for fid in feedback_applied]
        version = PromptVersion(
            version=number,
            parent=parent,
            prompt=prompt,
            backend=backend,
            feedback_applied=list(feedback_applied),
            **fields,
        )
        self.versions.append(version)
        for item in items:
            item.applied_in = number
            item.status = "applied"
        return version

    # --- feedback -------------------------------------------------------------------------------

    def open_feedback(self) -> list[FeedbackItem]:
        return [f for f in self.feedback if f.status == "open"]

    def get_feedback(self, feedback_id: str) -> FeedbackItem:
        for f in self.feedback:
            if f.id == feedback_id:
                return f
        raise NotFoundError(
            f"session {self.session_id} has no feedback {feedback_id!r}",
            hint=f"see `promptomatix feedback list {self.session_id}`",
        )

    def next_feedback_id(self) -> str:
        """`fb1`, `fb2`, ...: short enough to type; taken for good (the UI deletes feedback, and a reused id made
        `resume` apply a deleted comment), so call it only for an item about to be added."""
        from promptomatix.sessions.feedback_ids import take_feedback_id

        return take_feedback_id(self)

    # --- events ---------------------------------------------------------------------------------

    def add_event(self, kind: str, **data: Any) -> None:
        """Record a small breadcrumb (run started, interrupted, resumed...); keeps the last MAX_EVENTS."""
        self.events.append({"at": utcnow().isoformat(), "kind": kind, **data})
        excess = len(self.events) - MAX_EVENTS
        if excess > 0:  # drop the oldest, but never the note that credentials were not saved
            keep = [e for e in self.events[:excess] if e.get("kind") == CREDENTIALS_STRIPPED]
            self.events[:excess] = keep

    def note_stripped_credentials(self, config_keys: list[str]) -> None:
        """Record (once per key, never the value) that run_config URLs lost credentials when saved."""
        known = set(self.stripped_credentials())
        new = [f"run_config.{k}" for k in config_keys if f"run_config.{k}" not in known]
        if new:
            self.add_event(CREDENTIALS_STRIPPED, fields=new)

    def stripped_credentials(self) -> list[str]:
        """Fields (``run_config.api_base``) whose URL had credentials that were not saved with the session.

        A follow-up run of such a session needs them again: ``--api-base URL-with-credentials``/``--api-key``.
        """
        fields: list[str] = []
        for event in self.events:
            if event.get("kind") == CREDENTIALS_STRIPPED:
                fields += [f for f in event.get("fields", []) if isinstance(f, str) and f not in fields]
        return fields


def display_status(status: str | None, live_run: dict[str, Any] | None) -> str:
    """`status`, corrected by whether a run really holds the session now.

    - a live run: "running (pid N)" (or "completed, `feedback generate` running (pid N)");
    - status "running" with no live run: "stale" — its process died without saving (killed, crashed,
      power loss); `promptomatix resume ID` continues it like an interrupted run.
    """
    status = status or "?"
    if live_run:
        pid = live_run.get("pid")
        who = f"pid {pid}" if pid else "starting"
        if status == "running":
            return f"running ({who})"
        return f"{status}, `{live_run.get('command') or 'a run'}` running ({who})"
    return "stale" if status == "running" else status


class SessionSummary(BaseModel):
    """One row of `promptomatix sessions list`; for an unreadable file, `error` is set and little else."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    status: str | None = None
    description: str = ""
    n_versions: int = 0
    best_version: int | None = None
    best_score: float | None = None
    n_open_feedback: int = 0
    error: str | None = None
    # The run holding the session's run lock now ({pid, host, command, started}); None when none does.
    live_run: dict[str, Any] | None = None

    @classmethod
    def of(cls, session: Session) -> SessionSummary:
        best = session.best_version()
        description = session.description
        if not description and session.raw_input.strip():
            description = session.raw_input.strip().splitlines()[0]
        return cls(
            session_id=session.session_id, created_at=session.created_at, updated_at=session.updated_at,
            status=session.status, description=description[:100], n_versions=len(session.versions),
            best_version=best.version if best else None,
            best_score=selection_score(session, best) if best else None,
            n_open_feedback=len(session.open_feedback()),
        )  # fmt: skip

    @property
    def state(self) -> str:
        """The status as a user should read it: see `display_status`."""
        return display_status(self.status, self.live_run)

    @property
    def readable(self) -> bool:
        return self.error is None
