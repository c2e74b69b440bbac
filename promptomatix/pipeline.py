"""One optimization run end to end: task spec → data → search → held-out scoring → session version.

The stages live in `promptomatix.run` (typed state, one session recorder, one handler of interrupts and failures);
`Run` is the entry point for a new run that the CLI, `process_input`, the UI and the batch worker use. Sessions
are written at each stage, so a crash or Ctrl-C leaves the last good state readable, and the boundary's cache
lives in the session directory so `resume` replays paid calls.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from promptomatix.backends.base import ProgressFn
from promptomatix.config import RunConfig
from promptomatix.data import DataSplits
from promptomatix.lm.boundary import LMBoundary, ModelClient
from promptomatix.result import DryRunReport, OptimizationResult
from promptomatix.run import runner, stages
from promptomatix.run.env import RunEnv
from promptomatix.run.recorder import SessionRecorder
from promptomatix.run.state import RunState
from promptomatix.run_guard import owner_alive, run_owner
from promptomatix.sessions import SessionStore
from promptomatix.task import TaskSpec

__all__ = ["Run", "owner_alive", "run_owner"]


class Run:
    """A new run. `clients` (e.g. FakeLMs by role) replace model strings, for tests and engine benchmarks;
    `track` (`mlflow` or `mlflow:URI`) logs the session to MLflow when the run ends."""

    def __init__(
        self,
        config: RunConfig,
        *,
        clients: dict[str, ModelClient] | None = None,
        progress: ProgressFn | None = None,
        store: SessionStore | None = None,
        session_id: str | None = None,
        track: str | None = None,
    ) -> None:
        from promptomatix.lm.teacher import default_teacher

        config, teacher_note = default_teacher(config, fake_clients=clients is not None)
        recorder = SessionRecorder(store or SessionStore(config.sessions_dir), session_id)
        self.env = RunEnv(config, recorder, clients=clients, progress=progress, track=track)
        self.state = RunState()
        if teacher_note:
            self.state.notes.append(teacher_note)

    @property
    def config(self) -> RunConfig:
        return self.env.config

    @property
    def store(self) -> SessionStore:
        return self.env.store

    @property
    def session_id(self) -> str | None:
        return self.env.recorder.session_id

    @property
    def progress(self) -> ProgressFn | None:
        return self.env.live.step_fn

    @progress.setter
    def progress(self, fn: ProgressFn | None) -> None:
        """Steps only: a caller that sets this after construction (the UI) gets no per-call counter refreshes."""
        self.env.live.user = fn
        self.env.live.ticks = False

    def get_boundary(self) -> LMBoundary:
        return self.env.boundary()

    def metrics_manager(self, spec: TaskSpec) -> Any:
        return self.env.metrics_manager(spec)

    def prepare(self) -> tuple[TaskSpec, DataSplits, dict[str, Any]]:
        """The spec and data stages (both saved to the session)."""
        stages.spec_stage(self.env, self.state)
        stages.data_stage(self.env, self.state)
        return self.state.need("spec"), self.state.need("splits"), self.state.data_report

    def estimate(self, spec: TaskSpec, splits: DataSplits) -> dict[str, int]:
        """Estimated LM calls by stage, for dry runs."""
        from promptomatix.run.dry_run import estimate

        return estimate(self.env, self.state, spec, splits)[0]

    def execute(self) -> OptimizationResult | DryRunReport:
        """The whole run; a session it creates stays locked (no resume/delete elsewhere) until it ends."""
        with ExitStack() as stack:
            self.env.recorder.hold = stack
            return runner.run_new(self.env, self.state, prepare=self.prepare)
