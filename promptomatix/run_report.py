"""The result stage: save the searched and scored result as a version (or say why not) and build the result.

A refine whose result is exactly the prompt it started from makes no version and applies no feedback ("no
change"); one the held-out test calls worse than the version it started from is reported, but does not become the
latest version and applies no feedback. A resume whose result scores lower than the best-so-far saved before the
interruption keeps that version the same way (`run.previous`).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from promptomatix import held_out
from promptomatix.backends.base import BackendResult
from promptomatix.backends.contract import LABEL_LINE_ADDED
from promptomatix.result import OptimizationResult, RunMetrics, ScoreCI
from promptomatix.run.previous import kept_previous
from promptomatix.run.recorder import usage_of
from promptomatix.sessions.models import Score, TestScore, Usage

if TYPE_CHECKING:
    from promptomatix.held_out import HeldOut
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState
    from promptomatix.task import TaskSpec

log = logging.getLogger(__name__)


def finish(env: RunEnv, st: RunState) -> OptimizationResult:
    """Save the result (a version, or a kept/no-change event) and return what the run produced."""
    result, held, spec, splits = st.need("result"), st.need("held"), st.need("spec"), st.need("splits")
    paired = held_out.verdict(held, result, seed=env.config.seed)
    if st.parent_version is None:  # a new run (or its resume) says what it added to the user's initial prompt
        st.notes[:0] = [a for a in spec.assumptions if a.startswith(LABEL_LINE_ADDED)]
    kept, kind = _kept(st, result, held)
    scored: dict[str, Any] | None = None  # resume: the held-out results of the saved version it keeps
    resumed = kept_previous(env, st, result, held) if kept is None else None
    if resumed is not None:
        (kept, scored), kind = resumed, "kept_previous"
    elapsed = time.monotonic() - env.started  # after the saved version was scored: its calls are the run's too
    metrics = _metrics(env, result, held, elapsed)
    feedback_ids = [] if kept is not None else st.feedback_ids
    if feedback_ids:  # applied only when the new version addresses the item (sessions/feedback_check.py)
        feedback_ids = _addressed(env, result, feedback_ids, st.notes, st.human_feedback)
    for note in st.notes:
        log.warning("%s", note)
    extras = {"verdict": paired.model_dump(mode="json"), "pareto": held_out.pareto_ids(result),
              "test_examples": held_out.test_examples(held)}  # fmt: skip
    finished = _finished(metrics, paired)
    if kept is None:
        version: int | None = env.recorder.completed(
            _version_kwargs(result, metrics, usage_of(env.boundary(), elapsed), feedback_ids, st.notes, extras), finished
        )
    else:
        version = None
        env.recorder.kept(kind, kept, finished, usage_of(env.boundary(), elapsed), scored=scored,
                          rejected_prompt=result.prompt[:4000], notes=st.notes)  # fmt: skip
    env.emit("done", f"session {env.recorder.sid} version {version or kept}", best_score=result.valid_penalized)
    shown = _what_stays(env, kept, scored, result, metrics, paired, held, spec)
    return OptimizationResult(
        session_id=env.recorder.sid, version=version, kept_version=kept, no_change=kind == "no_change",
        backend=result.backend, task_type=spec.task_type, input_fields=spec.input_names,
        output_fields=spec.output_names, labels=spec.labels, initial_prompt=result.initial_prompt, **shown,
        stop_reason=result.stop_reason, rounds_completed=result.rounds_completed,
        n_candidates=len(result.candidates), data_splits={"train": list(splits.train), "valid": list(splits.valid)},
        data_report=st.data_report, task_spec=spec.model_dump(mode="json"), assumptions=_assumed(spec.assumptions),
        feedback_applied=feedback_ids, notes=st.notes, pareto=extras["pareto"],
    )  # fmt: skip


def _what_stays(
    env: RunEnv, kept: int | None, scored: dict[str, Any] | None, result: BackendResult, metrics: RunMetrics,
    paired: Any, held: HeldOut, spec: TaskSpec,
) -> dict[str, Any]:
    """The prompt the result hands out is the one the session keeps as latest: with a kept version, that version's
    (`r["result"]` was the candidate the held-out test rejected); the candidate is `candidate_prompt`. A resume that
    keeps its saved version reports that version's own held-out score and verdict against the initial prompt."""
    out: dict[str, Any] = {"best_prompt": result.prompt, "instructions": result.instructions,
                           "demos": result.demos, "metrics": metrics, "verdict": paired}  # fmt: skip
    out["prompt_text"] = prompt_text(spec, result.instructions, result.format_line, result.demos)
    if kept is None:
        return out
    v = env.recorder.store.load(env.recorder.sid).get_version(kept)
    out.update(best_prompt=v.prompt, instructions=v.instructions or v.prompt, demos=list(v.demos))
    out["prompt_text"] = prompt_text(spec, v.instructions or v.prompt, v.settings.get("format_line"), v.demos)
    out["candidate_prompt"] = result.prompt if result.prompt != v.prompt else None
    if not scored:  # a refine keeps its parent, which is the prompt it started from: its scores are the initial's
        m = metrics
        out["metrics"] = m.model_copy(update={"optimized_test_score": m.initial_test_score,
                                              "optimized_prompt_score": m.initial_prompt_score,
                                              "optimized_prompt_score_penalized": m.initial_prompt_score_penalized})
        same = held_out.HeldOut(held.split, held.initial, held.initial, held.initial_report, held.initial_report,
                                same_prompt=True, label_field=held.label_field)  # fmt: skip
        kept_result = result.model_copy(update={"prompt": result.initial_prompt, "valid_raw": result.initial_valid_raw})
        out["verdict"] = held_out.verdict(same, kept_result, seed=env.config.seed)
    elif scored.get("test") is not None:
        from promptomatix.metrics.verdict import PairedVerdict

        t = scored["test"]
        best = ScoreCI(mean=t.mean, ci_low=t.mean if t.ci_low is None else t.ci_low,
                       ci_high=t.mean if t.ci_high is None else t.ci_high, n=t.n)  # fmt: skip
        out["metrics"] = metrics.model_copy(update={"optimized_test_score": best,
                                                    "optimized_prompt_score": v.valid.raw if v.valid else None,
                                                    "optimized_prompt_score_penalized": v.valid.selection if v.valid
                                                    else None})  # fmt: skip
        out["verdict"] = PairedVerdict.model_validate(scored["verdict"])
    return out


def prompt_text(spec: TaskSpec, instructions: str, format_line: str | None, demos: list[dict[str, Any]]) -> str:
    """`r["result"]`: one text a caller can use as a system prompt (upstream's key held prompt text): the
    instructions and output-format line, then each demo as a worked example in the lines the model saw them as."""
    from promptomatix.backends.prompt import PromptCandidate, format_inputs, format_outputs

    text = PromptCandidate(instructions=instructions, format_line=format_line).system_text()
    examples = [f"Example {i}:\n{format_inputs(spec, d)}\nAnswer: {format_outputs(spec, d)}"
                for i, d in enumerate(demos, 1)]  # fmt: skip
    return "\n\n".join(part for part in (text, *examples) if part)


def _assumed(assumptions: list[str]) -> list[str]:
    """What the spec assumed, minus the label line note (a run note, not an assumption)."""
    return [a for a in assumptions if not a.startswith(LABEL_LINE_ADDED)]


def _addressed(env: RunEnv, result: BackendResult, ids: list[str], notes: list[str], texts: list[str]) -> list[str]:
    """The ids the new version addresses, among the items as the optimizer saw them (`texts`, paired with `ids`):
    one deleted or edited in the UI during the run is not recorded as applied."""
    from promptomatix.sessions.feedback_check import applied_feedback

    cfg = env.config
    reads = cfg.backend == "simple_meta_prompt" or (cfg.backend == "dspy" and cfg.dspy_optimizer == "gepa")
    session = env.recorder.store.load(env.recorder.sid)
    sent = dict(zip(ids, texts, strict=True)) if len(ids) == len(texts) else None
    applied, lines = applied_feedback(
        session, ids, result.initial_prompt, result.prompt, uses_feedback=reads, sent=sent
    )
    notes.extend(lines)
    return applied


def _kept(st: RunState, result: BackendResult, held: HeldOut) -> tuple[int | None, str]:
    """Refine only: the version that stays the latest, and why (`no_change` or `kept_previous`); else None."""
    parent = st.parent_version
    if parent is None:
        return None, ""
    if result.prompt == result.initial_prompt or result.prompt == st.parent_prompt:
        stays = "; the feedback stays open" if st.feedback_ids else ""
        st.notes.append(f"no change: the refined prompt is the same as version {parent}; no new version made{stays}")
        return parent, "no_change"
    initial, best = held.initial, held.best
    if initial is not None and best is not None and best.mean < initial.mean - 1e-9:
        st.notes.append(
            f"the new version scored lower on the held-out {held.split} "
            f"({best.mean:.3f} < {initial.mean:.3f}); kept version {parent} as latest"
        )
        return parent, "kept_previous"
    return None, ""


def _finished(metrics: RunMetrics, paired: Any) -> dict[str, Any]:
    """The `run_finished` event's scores and verdict."""
    return {
        "verdict": paired.model_dump(mode="json"),
        "scores": {
            "initial_valid": metrics.initial_prompt_score_penalized,
            "optimized_valid": metrics.optimized_prompt_score_penalized,
            "initial_test": metrics.initial_test_score.mean if metrics.initial_test_score else None,
            "optimized_test": metrics.optimized_test_score.mean if metrics.optimized_test_score else None,
            "test_split": metrics.test_split,
        },
        "calls": metrics.calls,
        "cost_usd": metrics.cost,
    }




def _metrics(env: RunEnv, result: BackendResult, held: HeldOut, elapsed: float) -> RunMetrics:
    usage = env.boundary().usage()
    total = usage.total
    return RunMetrics(
        initial_prompt_score=result.initial_valid_raw,
        optimized_prompt_score=result.valid_raw,
        initial_prompt_score_penalized=result.initial_valid_penalized,
        optimized_prompt_score_penalized=result.valid_penalized,
        initial_test_score=held.initial,
        optimized_test_score=held.best,
        test_split=held.split,
        calls=total.calls,
        cached_calls=total.cached_calls,
        estimated_calls=total.estimated_calls,
        tokens=total.tokens,
        prompt_tokens=total.prompt_tokens,
        completion_tokens=total.completion_tokens,
        cost=round(total.cost_usd, 6),
        time_taken=round(elapsed, 2),
        usage_by_role={r: u.model_dump() for r, u in usage.by_role.items()},
    )


def _version_kwargs(
    result: BackendResult, metrics: RunMetrics, usage: Usage, feedback_ids: list[str], notes: list[str],
    extras: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The result as `Session.add_version` arguments."""
    return {
        "prompt": result.prompt,
        "backend": result.backend,
        "instructions": result.instructions,
        "demos": result.demos,
        "settings": {**result.settings, "format_line": result.format_line, "stop_reason": result.stop_reason,
                     **({"notes": notes} if notes else {})},
        "valid": Score(raw=result.valid_raw, penalized=result.valid_penalized),
        "initial_valid": Score(raw=result.initial_valid_raw, penalized=result.initial_valid_penalized),
        "test": _test(metrics.optimized_test_score),
        "initial_test": _test(metrics.initial_test_score),
        "usage": usage,
        "duration_s": usage.seconds,
        "program_json": result.program_json,
        "candidates": [c.model_dump() for c in result.candidates],
        "feedback_applied": feedback_ids,
        **extras,
    }


def _test(score: ScoreCI | None) -> TestScore | None:
    return TestScore(mean=score.mean, ci_low=score.ci_low, ci_high=score.ci_high, n=score.n) if score else None
