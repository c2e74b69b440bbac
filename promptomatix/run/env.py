"""What a run's stages share: its config, the session recorder, the LM boundary, progress and tracking."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from promptomatix.backends.base import ProgressFn, RunContext, emit_progress
from promptomatix.run.progress import LiveProgress

if TYPE_CHECKING:
    from promptomatix.config import RunConfig
    from promptomatix.lm.boundary import LMBoundary, ModelClient
    from promptomatix.run.recorder import SessionRecorder
    from promptomatix.run.state import RunState
    from promptomatix.sessions import SessionStore
    from promptomatix.sessions.models import Usage
    from promptomatix.task import TaskSpec


class RunEnv:
    """One run's services. `clients` (e.g. FakeLMs by role) replace model strings, for tests and benchmarks;
    `track` (`mlflow` or `mlflow:URI`) logs the session when the run ends."""

    def __init__(
        self,
        config: RunConfig,
        recorder: SessionRecorder,
        *,
        clients: dict[str, ModelClient] | None = None,
        progress: ProgressFn | None = None,
        track: str | None = None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.clients = clients
        self.live = LiveProgress(progress)
        self.track = track
        self.started = time.monotonic()
        self.spent_before: Usage | None = None  # resume: the run's earlier spending counts against its limits
        self._boundary: LMBoundary | None = None

    @property
    def store(self) -> SessionStore:
        return self.recorder.store

    def boundary(self) -> LMBoundary:
        """The run's LM boundary (opens the session first: its response cache lives in the session directory)."""
        if self._boundary is None:
            from promptomatix.lm.factory import build_boundary
            from promptomatix.run.carried import budget_left

            sid = self.recorder.open(self.config)
            self._boundary = build_boundary(
                self.config.model_settings(),
                budget=budget_left(self.config.budget(), self.spent_before),
                cache_path=self.store.session_dir(sid) / "cache.sqlite",
                clients=self.clients,
                on_call=self.live.on_call if self.live.listening else None,  # else no per-call usage report
                on_message=lambda m: self.emit("model", m),
            )
        return self._boundary

    def boundary_if_built(self) -> LMBoundary | None:
        return self._boundary

    def emit(self, stage: str, message: str, **kw: Any) -> None:
        emit_progress(self.live.step_fn, self._boundary, stage, message, **kw)

    def metrics_manager(self, spec: TaskSpec) -> Any:
        """The run's metrics: the task type's built-in metric, or the custom `--metric` registered for it."""
        from promptomatix.metrics import MetricRegistry, MetricsManager, load_metric_spec
        from promptomatix.metrics.custom import check_metric_signature

        registry = None
        if self.config.metric:
            fn = load_metric_spec(self.config.metric)
            check_metric_signature(fn)
            registry = MetricRegistry()
            registry.register(spec.task_type, fn)
        return MetricsManager(
            output_fields=spec.output_names,
            lambda_penalty=self.config.lambda_penalty,
            judge=self.boundary().role("judge"),
            label_set=spec.labels,
            input_fields=spec.input_names,
            registry=registry,
        )

    def context(self, spec: TaskSpec, state: RunState | None = None) -> RunContext:
        """What a backend (or the held-out scoring, or the feedback critic) is handed."""
        from promptomatix.run.checkpoint import Checkpoint
        from promptomatix.run.recorder import usage_of

        def candidate(record: Any) -> None:
            self.recorder.candidates([record])

        return RunContext(
            boundary=self.boundary(),
            metrics=self.metrics_manager(spec),
            spec=spec,
            num_threads=self.config.num_threads,
            seed=self.config.seed,
            progress=self.live.step_fn,
            human_feedback=list(state.human_feedback) if state else [],
            checkpoint=lambda cp: self.recorder.checkpoint(Checkpoint.of(cp), usage_of(self.boundary())),
            on_candidate=candidate,
        )
