"""The end of a run: score both prompts on the held-out rows, save the result as a version, build the result.

Split from pipeline.py. A refine whose result the held-out test calls worse than the version it started from
is reported, but it does not become the latest version and applies no feedback.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from promptomatix import held_out
from promptomatix.backends.base import BackendResult
from promptomatix.data import DataSplits
from promptomatix.held_out import HeldOut
from promptomatix.result import OptimizationResult, RunMetrics, ScoreCI
from promptomatix.sessions.models import Score, TestScore, Usage
from promptomatix.task import TaskSpec

if TYPE_CHECKING:
    from promptomatix.pipeline import Run

log = logging.getLogger(__name__)


def finish(
    run: Run,
    spec: TaskSpec,
    result: BackendResult,
    held: HeldOut,
    data_report: dict[str, Any],
    splits: DataSplits,
    feedback_ids: list[str],
    notes: list[str],
    parent_version: int | None,
) -> OptimizationResult:
    sid = run._open_session()
    initial_test, best_test, test_split = held.initial, held.best, held.split
    total = run.get_boundary().usage().total
    elapsed = time.monotonic() - run._started
    metrics = _metrics(run, result, held, elapsed)
    paired = held_out.verdict(held, result, seed=run.config.seed)
    worse = _scored_lower(initial_test, best_test) and result.prompt != result.initial_prompt
    kept = parent_version if (parent_version is not None and worse) else None
    if kept is not None:
        feedback_ids = []
        notes.append(
            f"the new version scored lower on the held-out {test_split} "
            f"({best_test.mean:.3f} < {initial_test.mean:.3f}); kept version {kept} as latest"  # type: ignore[union-attr]
        )
    for note in notes:
        log.warning("%s", note)
    usage = Usage(
        calls=total.calls,
        cached_calls=total.cached_calls,
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        cost_usd=total.cost_usd,
        seconds=elapsed,
    )
    extras = {"verdict": paired.model_dump(mode="json"), "pareto": held_out.pareto_ids(result),
              "test_examples": held_out.test_examples(held)}  # fmt: skip
    version = _save_version(run, sid, result, metrics, usage, feedback_ids, notes, kept, extras)
    run._emit("done", f"session {sid} version {version or kept}", best_score=result.valid_penalized)
    return OptimizationResult(
        session_id=sid,
        version=version,
        kept_version=kept,
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
        notes=notes,
        verdict=paired,
        pareto=extras["pareto"],
    )


def _metrics(
    run: Run, result: BackendResult, held: HeldOut, elapsed: float
) -> RunMetrics:
    usage = run.get_boundary().usage()
    total = usage.total
    return RunMetrics(
        initial_prompt_score=result.initial_valid_penalized,
        optimized_prompt_score=result.valid_penalized,
        initial_prompt_score_raw=result.initial_valid_raw,
        optimized_prompt_score_raw=result.valid_raw,
        initial_test_score=held.initial,
        optimized_test_score=held.best,
        test_split=held.split,
        calls=total.calls,
        cached_calls=total.cached_calls,
        tokens=total.tokens,
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        cost=round(total.cost_usd, 6),
        time_taken=round(elapsed, 2),
        usage_by_role={r: u.model_dump() for r, u in usage.by_role.items()},
    )


def _save_version(
    run: Run,
    sid: str,
    result: BackendResult,
    metrics: RunMetrics,
    usage: Usage,
    feedback_ids: list[str],
    notes: list[str],
    kept: int | None,
    extras: dict[str, Any],
) -> int | None:
    """The result as the next version, or (kept) only an event: the previous version stays the latest."""
    holder: dict[str, int | None] = {"v": None}

    def save(s: Any) -> None:
        s.status = "completed"
        s.progress = {}
        if kept is not None:
            s.add_event("kept_previous", version=kept, rejected_prompt=result.prompt[:4000], notes=notes)
            return
        v = s.add_version(
            result.prompt,
            backend=result.backend,
            instructions=result.instructions,
            demos=result.demos,
            settings={
                **result.settings,
                "format_line": result.format_line,
                "stop_reason": result.stop_reason,
                **({"notes": notes} if notes else {}),
            },
            valid=Score(raw=result.valid_raw, penalized=result.valid_penalized),
            initial_valid=Score(raw=result.initial_valid_raw, penalized=result.initial_valid_penalized),
            test=_test(metrics.optimized_test_score),
            initial_test=_test(metrics.initial_test_score),
            usage=usage,
            duration_s=usage.seconds,
            program_json=result.program_json,
            candidates=[c.model_dump() for c in result.candidates],
            feedback_applied=feedback_ids,
            **extras,
        )
        s.add_event("completed", version=v.version)
        holder["v"] = v.version

    run.store.update(sid, save)
    return holder["v"]


def _scored_lower(initial: ScoreCI | None, best: ScoreCI | None) -> bool:
    return initial is not None and best is not None and best.mean < initial.mean - 1e-9


def _test(score: ScoreCI | None) -> TestScore | None:
    return TestScore(mean=score.mean, ci_low=score.ci_low, ci_high=score.ci_high, n=score.n) if score else None
