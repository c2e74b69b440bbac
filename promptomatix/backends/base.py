"""What every backend shares: the run context it is handed, progress events, scoring, and the result shape.

Backends follow DSPy's optimizer contract: hyperparameters in `__init__`, data in `compile`, and the input
(the initial prompt/program) is never mutated. They see train and valid only (BackendData); the held-out test
split is read by the final report, outside the backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from promptomatix.errors import StateError

#: True while a caller routes third-party prints itself (the CLI: to stderr under --json, as printed with
#: PROMPTOMATIX_VERBOSE=1, else to DEBUG records); otherwise a backend sends them to its log, so a library
#: caller's stdout carries only what the caller writes.
PRINTS_ROUTED: ContextVar[bool] = ContextVar("promptomatix_prints_routed", default=False)

if TYPE_CHECKING:
    from promptomatix.lm.boundary import LMBoundary, RoleLM
    from promptomatix.metrics import EvalReport, MetricsManager
    from promptomatix.run.checkpoint import Checkpoint
    from promptomatix.task.models import TaskSpec

log = logging.getLogger(__name__)
_ATTACH_HINT = "return result.with_predictors(best, initial) from compile"


class ProgressEvent(BaseModel):
    """One step of a run, for progress displays and logs."""

    stage: str  # spec | data | baseline | round | candidate | confirm | final | done | stopped
    message: str
    round: int | None = None
    total_rounds: int | None = None
    best_score: float | None = None
    calls: int | None = None
    cost_usd: float | None = None
    live: bool = False  # a counter refresh of the step already shown (sent as calls are made), not a new step
    #: the run's call and dollar limits as given, and what it spent before a resume (counted against them)
    max_calls: int | None = None
    max_usd: float | None = None
    calls_before: int = 0
    cost_before: float = 0.0


ProgressFn = Callable[[ProgressEvent], None]


def emit_progress(
    progress: ProgressFn | None, boundary: LMBoundary | None, stage: str, message: str, **kw: Any
) -> None:
    """Log a step and, when someone listens, send it with the run's calls and cost so far."""
    log.info("%s: %s", stage, message)
    if progress is None:
        return
    total = boundary.usage().total if boundary is not None else None
    limits: dict[str, Any] = {}
    if boundary is not None:
        b = boundary.budget
        calls, usd = b.shown("max_calls"), b.shown("max_usd")
        limits = {
            "max_calls": None if calls is None else int(calls),
            "max_usd": usd,
            "calls_before": int(b.carried.get("max_calls", 0)),
            "cost_before": b.carried.get("max_usd", 0.0),
        }
    progress(
        ProgressEvent(
            stage=stage,
            message=message,
            calls=total.calls if total else 0,
            cost_usd=total.cost_usd if total else 0.0,
            **{**limits, **kw},
        )
    )


@dataclass
class RunContext:
    """Everything a backend needs from the run. Passed down; nothing here is global."""

    boundary: LMBoundary
    metrics: MetricsManager
    spec: TaskSpec
    num_threads: int = 4
    seed: int = 0
    progress: ProgressFn | None = None
    human_feedback: list[str] = field(default_factory=list)
    max_errors: int | None = None
    checkpoint: Callable[[Checkpoint | dict[str, Any]], None] | None = None
    on_candidate: Callable[[CandidateRecord], None] | None = None

    def save_progress(self, state: Checkpoint | dict[str, Any]) -> None:
        """Record the best-so-far in the session, so Ctrl-C or a crash loses no finished round.

        A `promptomatix.run.checkpoint.Checkpoint` (a dict of the same shape is validated into one): the prompt as
        the model sees it and, for DSPy, the program JSON, so an interrupted run is saved as its backend made it."""
        if self.checkpoint is not None:
            self.checkpoint(state)

    def report_candidate(self, record: CandidateRecord) -> None:
        """A candidate was scored (run event `candidate_scored`); ones never reported go out with the result."""
        if self.on_candidate is not None:
            self.on_candidate(record)

    @property
    def task_lm(self) -> RoleLM:
        return self.boundary.role("task")

    @property
    def teacher_lm(self) -> RoleLM:
        return self.boundary.role("teacher")

    def emit(self, stage: str, message: str, **kw: Any) -> None:
        emit_progress(self.progress, self.boundary, stage, message, **kw)

    def evaluate(
        self,
        predict: Callable[[dict[str, Any]], Any],
        rows: Sequence[dict[str, Any]],
        *,
        final: bool = False,
        pool: Executor | None = None,
        ci: bool = True,
    ) -> EvalReport:
        """Score `predict` on rows (raw, no penalty: the caller multiplies by the candidate's penalty). `pool`
        shares worker threads between evaluations run at once; `ci=False` skips the bootstrap CIs (a search
        ranks on the point scores, and the CIs cost more CPU than a fast model's calls)."""
        from promptomatix.metrics import Evaluator

        evaluator = Evaluator(
            num_threads=self.num_threads, max_errors=self.max_errors, seed=self.seed, n_bootstrap=1000 if ci else 0
        )
        return evaluator.run(
            predict,
            list(rows),
            self.metrics.scorer(self.spec.task_type, final=final),
            self.spec.input_names,
            self.spec.output_names,
            label_field=self.spec.label_field,
            pool=pool,
        )


def selection_score(report: EvalReport) -> float:
    """What candidates are ranked by: `report.primary`. For classification under the built-in metric that is
    balanced accuracy (a constant label must not win); under a metric the user gave, for any task type, it is
    that metric's mean (the user's metric defines quality: the records carry `user_metric`)."""
    return float(report.primary)


class CandidateRecord(BaseModel):
    """One candidate tried by a backend, with its scores (the session keeps all of them)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    round: int
    origin: str
    prompt: str
    instructions: str
    n_demos: int = 0
    length: int = 0
    minibatch_score: float | None = None
    valid_raw: float | None = None
    valid_penalized: float | None = None
    confirm_score: float | None = None  # meta: penalized score on valid + train rows in the confirmation stage
    note: str = ""
    # What `sessions pick` needs to make this candidate a version a later refine starts from exactly, and the
    # raw (unpenalized) quality at each stage and the size the task model reads on every call, for the front.
    demos: list[dict[str, Any]] = Field(default_factory=list)
    format_line: str | None = None
    minibatch_raw: float | None = None
    confirm_raw: float | None = None
    tokens: int = 0  # ≈ tokens of instructions + format line + demos (4 characters a token), read on every call
    # the DSPy program of the initial candidate (#0), so a `sessions pick` of it exports as a DSPy program too
    program_json: dict[str, Any] | None = None


class BackendResult(BaseModel):
    """The outcome of `compile`: the best prompt as the model sees it, its scores, and every candidate."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: str
    prompt: str  # the best prompt as the model sees it
    instructions: str
    demos: list[dict[str, Any]] = Field(default_factory=list)
    format_line: str | None = None
    valid_raw: float
    valid_penalized: float
    initial_prompt: str
    initial_valid_raw: float
    initial_valid_penalized: float
    candidates: list[CandidateRecord] = Field(default_factory=list)
    rounds_completed: int = 0
    stop_reason: str = "completed"
    program_json: dict[str, Any] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    _best_predict: Callable[[dict[str, Any]], Any] | None = PrivateAttr(default=None)
    _initial_predict: Callable[[dict[str, Any]], Any] | None = PrivateAttr(default=None)

    def with_predictors(
        self, best: Callable[[dict[str, Any]], Any], initial: Callable[[dict[str, Any]], Any]
    ) -> BackendResult:
        self._best_predict = best
        self._initial_predict = initial
        return self

    @property
    def best_predict(self) -> Callable[[dict[str, Any]], Any]:
        if self._best_predict is None:
            raise StateError(f"backend {self.backend} did not attach predictors", hint=_ATTACH_HINT)
        return self._best_predict

    @property
    def initial_predict(self) -> Callable[[dict[str, Any]], Any]:
        if self._initial_predict is None:
            raise StateError(f"backend {self.backend} did not attach predictors", hint=_ATTACH_HINT)
        return self._initial_predict
