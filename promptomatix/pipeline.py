"""One optimization run end to end: task spec → data → backend → held-out evaluation → session version.

A `Run` owns everything mutable about a run (config, LM boundary, metrics manager, session id). The CLI and
`process_input` are thin layers over it. Sessions are written at each stage, so a crash or Ctrl-C leaves the last
good state readable, and the boundary's cache lives in the session directory so `resume` replays paid calls.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from promptomatix.backends.base import BackendResult, ProgressFn, RunContext, emit_progress
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.config import RunConfig
from promptomatix.data import DataSplits, build_data, estimate_data_calls, load_rows
from promptomatix.errors import BudgetExceeded, RunInterrupted
from promptomatix.lm.boundary import LMBoundary, ModelClient
from promptomatix.lm.factory import build_boundary
from promptomatix.result import DryRunReport, OptimizationResult, RunMetrics, ScoreCI
from promptomatix.sessions import SessionStore
from promptomatix.sessions.models import Score, TestScore, Usage
from promptomatix.spec import SpecOverrides, TaskSpec, estimate_spec_calls, infer_task_spec

log = logging.getLogger(__name__)


def run_owner() -> dict[str, Any]:
    """Who is running a session: `resume` refuses to start a second run of a session that is still alive."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def owner_alive(owner: dict[str, Any] | None) -> bool:
    if not owner or owner.get("host") != socket.gethostname() or owner.get("pid") == os.getpid():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except (ProcessLookupError, ValueError, TypeError, KeyError):
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


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
        self.progress = progress
        self.store = store or SessionStore(config.sessions_dir)
        self.session_id = session_id
        self.boundary: LMBoundary | None = None
        self._user: dict[str, Any] | None = None
        self._started = time.monotonic()

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
        return self.session_id

    def get_boundary(self) -> LMBoundary:
        if self.boundary is None:
            sid = self._open_session()
            self.boundary = build_boundary(
                self.config.model_settings(),
                budget=self.config.budget(),
                cache_path=self.store.session_dir(sid) / "cache.sqlite",
                clients=self.clients,
                on_message=lambda m: self._emit("model", m),
            )
        return self.boundary

    def _user_rows(self) -> dict[str, Any]:
        cfg = self.config
        fields = {"input_fields": cfg.input_fields, "output_fields": cfg.output_fields}
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
        try:
            spec, splits, data_report = self.prepare()
        except KeyboardInterrupt:
            if self.session_id is None:
                raise
            raise self._interrupted(None) from None
        except Exception:
            self._mark_failed()
            raise
        if self.config.dry_run:
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
        return self.optimize(spec, splits, PromptCandidate(instructions=spec.initial_prompt), data_report)

    def optimize(
        self,
        spec: TaskSpec,
        splits: DataSplits,
        initial: PromptCandidate,
        data_report: dict[str, Any],
        *,
        human_feedback: list[str] | None = None,
        feedback_ids: list[str] | None = None,
    ) -> OptimizationResult:
        from promptomatix.backends.registry import make_backend

        cfg = self.config
        sid = self._open_session()
        boundary = self.get_boundary()
        metrics = self.metrics_manager(spec)
        ctx = RunContext(
            boundary=boundary,
            metrics=metrics,
            spec=spec,
            num_threads=cfg.num_threads,
            seed=cfg.seed,
            progress=self.progress,
            human_feedback=list(human_feedback or []),
            checkpoint=lambda state: self.store.update(sid, lambda s: s.progress.update(state)),
        )
        test_rows = splits.test_rows()
        test_split = "test" if test_rows else "valid"
        test_rows = test_rows or list(splits.valid)
        full = boundary.budget
        if full.max_calls is not None:  # keep enough calls to score both prompts on the held-out split
            boundary.set_budget(full.model_copy(update={"reserved_calls": min(full.max_calls, 2 * len(test_rows))}))
        backend = make_backend(cfg)
        start_state = {
            "owner": run_owner(),
            "initial": initial.model_dump(),
            "human_feedback": list(human_feedback or []),
            "feedback_ids": list(feedback_ids or []),
        }

        def start(s: Any) -> None:
            s.status = "running"
            s.progress = start_state
            s.add_event("run", backend=cfg.backend)

        self.store.update(sid, start)
        try:
            result = backend.compile(ctx, initial, splits.backend_view())
        except KeyboardInterrupt:
            raise self._interrupted(spec) from None
        except BudgetExceeded as e:
            self._mark_failed()
            raise BudgetExceeded(
                f"the budget ran out before the initial prompt was scored ({e.message})",
                limit=e.limit,
                hint="raise --max-calls/--max-usd/--max-minutes or use a smaller --synthetic-data-size",
            ) from e
        except Exception:
            self._mark_failed()
            raise
        finally:
            # Release the calls held back for the final report. A time limit bounds the search, not the report:
            # without held-out scores the run would have nothing to show for the time it spent.
            boundary.set_budget(full.model_copy(update={"max_seconds": None}))
        self._emit("final", f"scoring initial and optimized prompts on {len(test_rows)} held-out {test_split} rows")
        try:
            initial_test = self._test_score(ctx, result.initial_predict, test_rows)
            same = result.prompt == result.initial_prompt
            best_test = initial_test if same else self._test_score(ctx, result.best_predict, test_rows)
        except KeyboardInterrupt:
            raise self._interrupted(spec) from None
        return self._finish(spec, result, initial_test, best_test, test_split, data_report, splits, feedback_ids or [])

    def metrics_manager(self, spec: TaskSpec) -> Any:
        """The run's metrics: the task type's built-in metric, or the custom `--metric` registered for it."""
        from promptomatix.metrics import MetricRegistry, MetricsManager, load_metric_spec

        registry = None
        if self.config.metric:
            registry = MetricRegistry()
            registry.register(spec.task_type.value, load_metric_spec(self.config.metric))
        return MetricsManager(
            output_fields=spec.output_names,
            lambda_penalty=self.config.lambda_penalty,
            judge=self.get_boundary().role("judge"),
            label_set=spec.labels,
            input_fields=spec.input_names,
            registry=registry,
        )

    def _test_score(
        self, ctx: RunContext, predict: Callable[[dict[str, Any]], Any], rows: list[dict[str, Any]]
    ) -> ScoreCI | None:
        try:
            rep = ctx.evaluate(predict, rows, final=True)
        except BudgetExceeded as e:
            log.warning("no held-out score: %s", e.message)
            return None
        return ScoreCI(
            mean=rep.primary,
            ci_low=rep.primary_ci[0],
            ci_high=rep.primary_ci[1],
            n=rep.n,
            accuracy=rep.accuracy,
            macro_f1=rep.macro_f1,
            balanced_accuracy=rep.balanced_accuracy,
            n_errors=rep.n_errors,
        )

    def _mark_failed(self) -> None:
        """A run that raised stays resumable: `promptomatix resume` continues failed sessions too."""
        if self.session_id is None:
            return
        try:
            self.store.update(self.session_id, lambda s: (setattr(s, "status", "failed"), s.add_event("failed")))
        except Exception as e:  # never hide the original error behind a bookkeeping one
            log.warning("could not mark session %s failed: %s", self.session_id, e)

    def _interrupted(self, spec: TaskSpec | None) -> RunInterrupted:
        """On Ctrl-C: mark the session interrupted, keep the best so far, and say how to resume."""
        sid = self._open_session()
        version = self._save_interrupted(spec)
        return RunInterrupted(
            "interrupted" + (f"; best so far saved as version {version}" if version else ""),
            session_id=sid,
            hint=f"resume with `promptomatix resume {sid}`",
        )

    def _save_interrupted(self, spec: TaskSpec | None) -> int | None:
        """Keep the best candidate recorded by the last finished round as a version (once per interruption)."""
        sid = self._open_session()
        holder: dict[str, int | None] = {"v": None}

        def save(s: Any) -> None:
            s.status = "interrupted"
            s.add_event("interrupted")
            best = (s.progress or {}).get("best")
            if best and spec is not None:
                cand = PromptCandidate(**{k: best[k] for k in ("instructions", "demos", "format_line", "origin")})
                v = s.add_version(
                    cand.render(spec),
                    backend=self.config.backend,
                    instructions=cand.instructions,
                    demos=cand.demos,
                    settings={"format_line": cand.format_line, "interrupted": True},
                    valid=Score(raw=best.get("valid_raw"), penalized=best.get("valid_penalized")),
                )
                holder["v"] = v.version

        self.store.update(sid, save)
        return holder["v"]

    def _finish(
        self,
        spec: TaskSpec,
        result: BackendResult,
        initial_test: ScoreCI | None,
        best_test: ScoreCI | None,
        test_split: str,
        data_report: dict[str, Any],
        splits: DataSplits,
        feedback_ids: list[str],
    ) -> OptimizationResult:
        sid = self._open_session()
        usage = self.get_boundary().usage()
        total = usage.total
        elapsed = time.monotonic() - self._started
        metrics = RunMetrics(
            initial_prompt_score=result.initial_valid_penalized,
            optimized_prompt_score=result.valid_penalized,
            initial_prompt_score_raw=result.initial_valid_raw,
            optimized_prompt_score_raw=result.valid_raw,
            initial_test_score=initial_test,
            optimized_test_score=best_test,
            test_split=test_split,
            calls=total.calls,
            cached_calls=total.cached_calls,
            tokens=total.tokens,
            prompt_tokens=total.prompt_tokens,
            completion_tokens=total.completion_tokens,
            cost=round(total.cost_usd, 6),
            time_taken=round(elapsed, 2),
            usage_by_role={r: u.model_dump() for r, u in usage.by_role.items()},
        )
        holder: dict[str, int] = {}

        def save(s: Any) -> None:
            v = s.add_version(
                result.prompt,
                backend=result.backend,
                instructions=result.instructions,
                demos=result.demos,
                settings={**result.settings, "format_line": result.format_line, "stop_reason": result.stop_reason},
                valid=Score(raw=result.valid_raw, penalized=result.valid_penalized),
                initial_valid=Score(raw=result.initial_valid_raw, penalized=result.initial_valid_penalized),
                test=_test(best_test),
                initial_test=_test(initial_test),
                usage=Usage(
                    calls=total.calls,
                    cached_calls=total.cached_calls,
                    prompt_tokens=total.prompt_tokens,
                    completion_tokens=total.completion_tokens,
                    cost_usd=total.cost_usd,
                    seconds=elapsed,
                ),
                duration_s=elapsed,
                program_json=result.program_json,
                candidates=[c.model_dump() for c in result.candidates],
                feedback_applied=feedback_ids,
            )
            s.status = "completed"
            s.progress = {}
            s.add_event("completed", version=v.version)
            holder["v"] = v.version

        self.store.update(sid, save)
        self._emit("done", f"session {sid} version {holder['v']}", best_score=result.valid_penalized)
        return OptimizationResult(
            session_id=sid,
            version=holder["v"],
            backend=result.backend,
            task_type=spec.task_type.value,
            input_fields=spec.input_names,
            output_fields=spec.output_names,
            labels=spec.labels,
            initial_prompt=result.initial_prompt,
            best_prompt=result.prompt,
            instructions=result.instructions,
            demos=result.demos,
            metrics=metrics,
            stop_reason=result.stop_reason,
            rounds_completed=result.rounds_completed,
            n_candidates=len(result.candidates),
            synthetic_data={"train": list(splits.train), "valid": list(splits.valid)},
            data_report=data_report,
            task_spec=spec.model_dump(mode="json"),
            assumptions=spec.assumptions,
            feedback_applied=feedback_ids,
        )


def _test(score: ScoreCI | None) -> TestScore | None:
    return TestScore(mean=score.mean, ci_low=score.ci_low, ci_high=score.ci_high, n=score.n) if score else None
