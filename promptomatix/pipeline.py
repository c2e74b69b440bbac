"""One optimization run end to end: task spec → data → backend → held-out evaluation → session version.

A `Run` owns everything mutable about a run (config, LM boundary, metrics manager, session id). The CLI and
`process_input` are thin layers over it. Sessions are written at each stage, so a crash or Ctrl-C leaves the last
good state readable, and the boundary's cache lives in the session directory so `resume` replays paid calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from promptomatix import held_out, run_guard, run_report
from promptomatix.backends.base import BackendResult, ProgressEvent, ProgressFn, RunContext, emit_progress
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.config import RunConfig
from promptomatix.data import DataSplits, build_data, estimate_data_calls, load_rows, sample_cap
from promptomatix.errors import BudgetExceeded, DataError, ModelUnavailableError, RunInterrupted
from promptomatix.lm.boundary import LMBoundary, ModelClient, UsageReport
from promptomatix.lm.factory import build_boundary
from promptomatix.result import DryRunReport, OptimizationResult
from promptomatix.run_guard import owner_alive, run_owner
from promptomatix.sessions import SessionStore
from promptomatix.task import SpecOverrides, TaskSpec, estimate_spec_calls, infer_task_spec

log = logging.getLogger(__name__)

__all__ = ["Run", "owner_alive", "run_owner"]

#: The live call counter refreshes at most this often (seconds): every call counts, the terminal keeps up.
TICK_S = 0.25


class Run:
    """A single run. `clients` (e.g. FakeLMs by role) replace model strings, for tests and engine benchmarks."""

    def __init__(
        self,
        config: RunConfig,
        *,
        clients: dict[str, ModelClient] | None = None,
        progress: ProgressFn | None = None,
        store: SessionStore | None = None,
        session_id: str | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.user_progress = progress
        self.progress: ProgressFn | None = self._track if progress is not None else None
        self.store = store or SessionStore(config.sessions_dir)
        self.session_id = session_id
        self.boundary: LMBoundary | None = None
        self._user: dict[str, Any] | None = None
        self._started = time.monotonic()
        self._stack: ExitStack | None = None  # holds the run lock of a session this run created
        self._spec: TaskSpec | None = None
        self._last_event: ProgressEvent | None = None
        self._tick_lock = threading.Lock()
        self._last_tick = 0.0

    # -- progress -----------------------------------------------------------------------------------------------
    def _track(self, event: ProgressEvent) -> None:
        """Forward a step to the caller's progress function and remember it for the live call counter."""
        self._last_event = event
        if self.user_progress is not None:
            self.user_progress(event)

    def _on_call(self, usage: UsageReport) -> None:
        """Every model call (attempt) re-sends the last step with fresh counts, at most every TICK_S seconds."""
        if self.user_progress is None or self._last_event is None:
            return
        with self._tick_lock:
            now = time.monotonic()
            if now - self._last_tick < TICK_S:
                return
            self._last_tick = now
        total = usage.total
        tick = self._last_event.model_copy(update={"calls": total.calls, "cost_usd": total.cost_usd, "live": True})
        self.user_progress(tick)

    # -- stages -------------------------------------------------------------------------------------------------
    def _emit(self, stage: str, message: str, **kw: Any) -> None:
        emit_progress(self.progress, self.boundary, stage, message, **kw)

    def _open_session(self) -> str:
        cfg = self.config
        if self.session_id is None:
            # Rows passed in memory are not part of run_config; keep them so `resume` after a Ctrl-C during
            # spec/data building uses them instead of silently generating synthetic data.
            given = {k: v for k, v in (("train_data", cfg.train_data), ("valid_data", cfg.valid_data),
                                       ("test_data", cfg.test_data)) if v is not None}  # fmt: skip
            session = self.store.new_session(
                description=(cfg.task_description or cfg.raw_input)[:200],
                raw_input=cfg.raw_input,
                run_config=cfg.persistable(),
                status="running",
                data={"given_rows": given} if given else {},
                progress={"owner": run_owner()},
            )
            self.session_id = session.session_id
            if self._stack is not None:  # a new session is ours for the whole run: `delete`/`resume` refuse
                self._stack.enter_context(run_guard.run_lock(self.store, self.session_id, "optimize"))
        return self.session_id

    def get_boundary(self) -> LMBoundary:
        if self.boundary is None:
            sid = self._open_session()
            self.boundary = build_boundary(
                self.config.model_settings(),
                budget=self.config.budget(),
                cache_path=self.store.session_dir(sid) / "cache.sqlite",
                clients=self.clients,
                on_call=self._on_call,
                on_message=lambda m: self._emit("model", m),
            )
        return self.boundary

    def _guard(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run a stage so that no ending leaves the session `running`: Ctrl-C → interrupted, errors → failed."""
        try:
            return fn(*args, **kw)
        except KeyboardInterrupt:
            if self.session_id is None:
                raise
            raise run_guard.interrupted(self.store, self.session_id, self._spec, self.config.backend) from None
        except RunInterrupted:
            raise
        except DataError as e:
            cause = run_guard.provider_cause(self.boundary, "teacher")
            run_guard.mark_failed(self.store, self.session_id, run_guard.one_line(str(e)))
            if cause != "no error was recorded":  # the data is missing because the teacher could not answer
                raise ModelUnavailableError(f"the teacher model could not answer: {cause}") from e
            raise
        except Exception as e:
            run_guard.mark_failed(self.store, self.session_id, run_guard.one_line(str(e)))
            raise

    def _user_rows(self) -> dict[str, Any]:
        cfg = self.config
        fields = {"input_fields": cfg.input_fields, "output_fields": cfg.output_fields, "seed": cfg.seed,
                  "max_rows": sample_cap(cfg.train_data_size, cfg.valid_data_size, cfg.test_data_size)}  # fmt: skip
        out: dict[str, Any] = {"skipped": {}}
        sources = {
            "user_rows": cfg.data,
            "train_rows": cfg.local_train_data_path,
            "test_rows": cfg.local_test_data_path,
        }
        for key, source in sources.items():
            if source:
                loaded = load_rows(source, **fields)
                out[key] = loaded.rows
                out["skipped"].update({f"{source}: {k}": v for k, v in loaded.skipped.items()})
        if cfg.train_data is not None:
            out["train_rows"] = cfg.train_data
        if cfg.valid_data is not None:
            out["valid_rows"] = cfg.valid_data
        if cfg.test_data is not None:
            out["test_rows"] = cfg.test_data
        if "test_rows" in out and "train_rows" not in out and "user_rows" in out:
            out["train_rows"] = out.pop("user_rows")
        return out

    def prepare(self) -> tuple[TaskSpec, DataSplits, dict[str, Any]]:
        """Infer the spec and build the data, saving both to the session."""
        cfg = self.config
        boundary = self.get_boundary()
        teacher = boundary.role("teacher")
        user = self._user_rows()
        self._user = user
        rows = [*user.get("user_rows", []), *user.get("train_rows", []), *user.get("valid_rows", [])]
        overrides = SpecOverrides.from_kwargs(cfg.model_dump())
        self._emit("spec", "working out the task spec")
        spec = infer_task_spec(cfg.raw_input, teacher=teacher, given=overrides, rows=rows or None)
        self._emit("spec", f"task type {spec.task_type.value}; fields {spec.input_names} -> {spec.output_names}")
        self._emit("data", "building train / valid / test data")
        splits, report = build_data(
            spec,
            teacher=teacher,
            user_rows=user.get("user_rows"),
            train_rows=user.get("train_rows"),
            valid_rows=user.get("valid_rows"),
            test_rows=user.get("test_rows"),
            synthetic_size=cfg.synthetic_data_size,
            seed=cfg.seed,
            train_size=cfg.train_data_size,
            valid_size=cfg.valid_data_size,
            test_size=cfg.test_data_size,
            train_ratio=cfg.train_ratio,
            max_workers=cfg.n_parallel,
            batch_size=cfg.batch_size_for_teacher(teacher.model),
            verify=cfg.verify_synthetic,
            skipped=user["skipped"],
        )
        data_report = report.model_dump(mode="json")
        self._emit("data", f"data ready: {splits.sizes}")

        def save(s: Any) -> None:
            s.task_spec = spec.model_dump(mode="json")
            s.data = splits.to_dict()
            s.data_report = data_report

        self.store.update(self._open_session(), save)
        return spec, splits, data_report

    def estimate(self, spec: TaskSpec, splits: DataSplits) -> dict[str, int]:
        """Estimated LM calls by stage, for dry runs (an upper bound for the optimizer)."""
        from promptomatix.backends.registry import backend_settings

        cfg = self.config
        user = self._user or self._user_rows()
        rows = [*user.get("user_rows", []), *user.get("train_rows", []), *user.get("valid_rows", [])]
        n_train, n_valid = len(splits.train), len(splits.valid)
        n_test = len(splits.test_rows()) or n_valid
        return {
            "spec": estimate_spec_calls(SpecOverrides.from_kwargs(cfg.model_dump()), rows=rows or None),
            "data": estimate_data_calls(
                n_user_rows=len(user.get("user_rows", [])),
                synthetic_size=cfg.synthetic_data_size,
                batch_size=cfg.batch_size_for_teacher(self.get_boundary().role("teacher").model),
                verify=cfg.verify_synthetic,
                explicit_splits="train_rows" in user or "valid_rows" in user,
            ),
            "optimize": backend_settings(cfg).estimate_calls(n_train, n_valid),
            "final_test": 2 * n_test,
        }

    # -- the run ------------------------------------------------------------------------------------------------
    def execute(self) -> OptimizationResult | DryRunReport:
        with ExitStack() as stack:
            self._stack = stack
            spec, splits, data_report = self._guard(self.prepare)
            if self.config.dry_run:
                return self._dry_run(spec, splits, data_report)
            initial = PromptCandidate(instructions=spec.initial_prompt)
            return self.optimize(spec, splits, initial, data_report)

    def _dry_run(self, spec: TaskSpec, splits: DataSplits, data_report: dict[str, Any]) -> DryRunReport:
        estimate = self.estimate(spec, splits)
        self.store.update(self._open_session(), lambda s: setattr(s, "status", "created"))
        return DryRunReport(
            session_id=self.session_id,
            task_type=spec.task_type.value,
            input_fields=spec.input_names,
            output_fields=spec.output_names,
            labels=spec.labels,
            initial_prompt=spec.initial_prompt,
            assumptions=spec.assumptions,
            rows={"train": splits.train, "valid": splits.valid, "test": splits.test_rows()},
            data_report=data_report,
            estimated_calls={**estimate, "total": sum(estimate.values())},
            calls_so_far=self.get_boundary().usage().total.calls,
            task_spec=spec.model_dump(mode="json"),
        )

    def optimize(
        self,
        spec: TaskSpec,
        splits: DataSplits,
        initial: PromptCandidate,
        data_report: dict[str, Any],
        *,
        human_feedback: list[str] | None = None,
        feedback_ids: list[str] | None = None,
        parent_version: int | None = None,
    ) -> OptimizationResult:
        """Optimize from `initial`; with `parent_version` (refine), a result the held-out test calls worse than
        that version is reported but does not replace it as the latest."""
        self._spec = spec
        return self._guard(
            self._optimize, spec, splits, initial, data_report, list(human_feedback or []),
            list(feedback_ids or []), parent_version,
        )  # fmt: skip

    def _optimize(
        self,
        spec: TaskSpec,
        splits: DataSplits,
        initial: PromptCandidate,
        data_report: dict[str, Any],
        human_feedback: list[str],
        feedback_ids: list[str],
        parent_version: int | None,
    ) -> OptimizationResult:
        cfg = self.config
        sid = self._open_session()
        boundary = self.get_boundary()
        ctx = RunContext(
            boundary=boundary,
            metrics=self.metrics_manager(spec),
            spec=spec,
            num_threads=cfg.num_threads,
            seed=cfg.seed,
            progress=self.progress,
            human_feedback=human_feedback,
            checkpoint=lambda state: self.store.update(sid, lambda s: s.progress.update(state)),
        )
        test_rows = splits.test_rows()
        test_split = "test" if test_rows else "valid"
        test_rows = test_rows or list(splits.valid)
        full = boundary.budget
        if full.max_calls is not None:  # keep enough calls to score both prompts on the held-out split
            boundary.set_budget(full.model_copy(update={"reserved_calls": min(full.max_calls, 2 * len(test_rows))}))
        self._start(sid, initial, human_feedback, feedback_ids, parent_version)
        result = self._compile(ctx, initial, splits, full)
        self._emit("final", f"scoring initial and optimized prompts on {len(test_rows)} held-out {test_split} rows")
        held = held_out.score_held_out(ctx, result, test_rows, test_split)
        run_guard.require_task_answered(boundary)
        notes = run_guard.held_out_notes(held.initial, held.best, test_split, boundary, held.same_prompt)
        return run_report.finish(self, spec, result, held, data_report, splits, feedback_ids, notes, parent_version)

    def _start(
        self,
        sid: str,
        initial: PromptCandidate,
        human_feedback: list[str],
        feedback_ids: list[str],
        parent_version: int | None,
    ) -> None:
        state = {
            "owner": run_owner(),
            "initial": initial.model_dump(),
            "human_feedback": human_feedback,
            "feedback_ids": feedback_ids,
            "parent_version": parent_version,
        }

        def start(s: Any) -> None:
            s.status = "running"
            s.progress = state
            s.add_event("run", backend=self.config.backend)

        self.store.update(sid, start)

    def _compile(self, ctx: RunContext, initial: PromptCandidate, splits: DataSplits, full: Any) -> BackendResult:
        from promptomatix.backends.registry import make_backend

        boundary = ctx.boundary
        try:
            return make_backend(self.config).compile(ctx, initial, splits.backend_view())
        except BudgetExceeded as e:
            raise BudgetExceeded(
                f"the budget ran out before the initial prompt was scored ({e.message})",
                limit=e.limit,
                hint="raise --max-calls/--max-usd/--max-minutes or use a smaller --synthetic-data-size",
            ) from e
        finally:
            # Release the calls held back for the final report. A time limit bounds the search, not the report:
            # without held-out scores the run would have nothing to show for the time it spent.
            boundary.set_budget(full.model_copy(update={"max_seconds": None}))

    def metrics_manager(self, spec: TaskSpec) -> Any:
        """The run's metrics: the task type's built-in metric, or the custom `--metric` registered for it."""
        from promptomatix.metrics import MetricRegistry, MetricsManager, load_metric_spec
        from promptomatix.metrics.manager import check_metric_signature

        registry = None
        if self.config.metric:
            fn = load_metric_spec(self.config.metric)
            check_metric_signature(fn)
            registry = MetricRegistry()
            registry.register(spec.task_type.value, fn)
        return MetricsManager(
            output_fields=spec.output_names,
            lambda_penalty=self.config.lambda_penalty,
            judge=self.get_boundary().role("judge"),
            label_set=spec.labels,
            input_fields=spec.input_names,
            registry=registry,
        )
