"""The version a resumed run has to beat: the best-so-far the interrupted run saved.

`resume` searches again from the run's initial prompt, so its result can be worse than the version saved at the
interruption. That version is scored on the same held-out rows as the result (free when its prompt is the
initial prompt's, or the result's; calls already made replay from the session's cache), and a result that scores
lower does not become the latest version: the run keeps the saved one and says so, as `refine` keeps its parent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptomatix.errors import BudgetExceeded

if TYPE_CHECKING:
    from promptomatix.backends.base import BackendResult
    from promptomatix.held_out import HeldOut
    from promptomatix.metrics import EvalReport
    from promptomatix.run.env import RunEnv
    from promptomatix.run.state import RunState
    from promptomatix.sessions.models import PromptVersion

META = "simple_meta_prompt"


def previous_version(env: RunEnv, st: RunState) -> PromptVersion | None:
    """The latest version the session held before this run, unless it is the refine's parent (that one is the
    initial prompt, compared by `run_report._kept`). A new run has none; a resumed one has the best-so-far."""
    sid = env.recorder.session_id
    if sid is None:
        return None
    latest = env.recorder.store.load(sid).latest_version()
    if latest is None or latest.version == st.parent_version:
        return None
    return latest


def held_out_passes(env: RunEnv, st: RunState) -> int:
    """How many prompts the final report may score on the held-out rows: 3 when a saved version must be scored
    too (its prompt is not the initial one), else 2 (the budget holds back that many calls per row)."""
    prev = previous_version(env, st)
    initial = st.initial.render(st.need("spec")) if st.initial is not None else None
    return 3 if prev is not None and prev.prompt != initial else 2


def kept_previous(env: RunEnv, st: RunState, result: BackendResult, held: HeldOut) -> tuple[int, dict[str, Any]] | None:
    """Resume: the saved version when the result scores lower on the same held-out rows (a note says why and the
    numbers), with the held-out results to record on it; None when there is no such version, the result is its
    prompt, or it is not worse."""
    prev = previous_version(env, st)
    if prev is None or prev.prompt == result.prompt or held.best is None or held.best_report is None:
        return None
    report, why = _score(env, st, prev, result, held)
    if report is None:
        st.notes.append(f"not compared with version {prev.version} (saved before the interruption): {why}; "
                        "the result was saved as a new version")  # fmt: skip
        return None
    from promptomatix.held_out import row_weights
    from promptomatix.metrics.verdict import paired_verdict

    a = {r.index: r for r in report.records}
    b = {r.index: r for r in held.best_report.records}
    common = sorted(set(a) & set(b))
    weights = row_weights(held, [a[i] for i in common])  # balanced accuracy's, when labels are uneven
    w = weights or [1.0] * len(common)
    previous_mean = sum(x * a[i].raw_score for x, i in zip(w, common, strict=True)) / max(1, len(common))
    best_mean = sum(x * b[i].raw_score for x, i in zip(w, common, strict=True)) / max(1, len(common))
    if not common or best_mean >= previous_mean - 1e-9:
        return None
    errors = sum(a[i].error is not None or b[i].error is not None for i in common)
    paired = paired_verdict([a[i].raw_score for i in common], [b[i].raw_score for i in common], errors=errors,
                            split=held.split, seed=env.config.seed, weights=weights)  # fmt: skip
    st.notes.append(
        f"the resumed run's result scored lower on the held-out {held.split} than version {prev.version}, the best "
        f"so far saved before the interruption ({best_mean:.3f} < {previous_mean:.3f} on the same {len(common)} "
        f"rows; {paired.summary()}); kept version {prev.version} as latest"
    )
    return prev.version, _scored(env, prev, report, result, held)


def _scored(
    env: RunEnv, prev: PromptVersion, report: EvalReport, result: BackendResult, held: HeldOut
) -> dict[str, Any]:
    """What the kept version gets: its held-out score, per-row results and verdict against the run's initial
    prompt (as a completed version has them), and it is no longer shown as an unscored best-so-far."""
    from promptomatix import held_out
    from promptomatix.result import ScoreCI
    from promptomatix.sessions.models import TestScore

    def test(s: ScoreCI | None) -> TestScore | None:
        return TestScore(mean=s.mean, ci_low=s.ci_low, ci_high=s.ci_high, n=s.n) if s else None

    score = ScoreCI(mean=report.primary, ci_low=report.primary_ci[0], ci_high=report.primary_ci[1], n=report.n,
                    n_errors=report.n_errors)  # fmt: skip
    same = prev.prompt == result.initial_prompt
    own = held_out.HeldOut(held.split, held.initial, score, held.initial_report, report, same_prompt=same,
                           label_field=held.label_field)  # fmt: skip
    verdict = held_out.verdict(own, result.model_copy(update={"prompt": prev.prompt, **_valid_of(prev, result)}),
                               seed=env.config.seed)  # fmt: skip
    return {
        "test": test(score),
        "initial_test": test(held.initial),
        "test_examples": held_out.test_examples(own),
        "verdict": verdict.model_dump(mode="json"),
        "settings": {**prev.settings, "interrupted": False, "saved_at_interrupt": True, "scored_by": "resume"},
    }


def _valid_of(prev: PromptVersion, result: BackendResult) -> dict[str, float]:
    """The kept version's own valid scores, as its run chose it (the verdict said "chosen for its valid score
    (+x)" with the rejected candidate's gain); no gain claimed when they were not recorded."""
    mine, base = prev.valid, prev.initial_valid
    if mine is not None and base is not None and mine.raw is not None and base.raw is not None:
        return {"valid_raw": mine.raw, "initial_valid_raw": base.raw}
    return {"valid_raw": result.initial_valid_raw}


def _score(
    env: RunEnv, st: RunState, prev: PromptVersion, result: BackendResult, held: HeldOut
) -> tuple[EvalReport | None, str]:
    """The saved version's held-out report, or None and why it could not be had."""
    if prev.prompt == result.initial_prompt:
        return held.initial_report, "the initial prompt was not scored on the held-out rows"
    from promptomatix.backends.prompt import PromptProgram
    from promptomatix.followup import candidate_of
    from promptomatix.run.stages import held_out_rows

    spec, ctx = st.need("spec"), st.need("ctx")
    candidate = candidate_of(prev)
    if prev.backend != META or prev.program_json is not None or candidate.render(spec) != prev.prompt:
        return None, f"it was made by the {prev.backend} backend, whose program this run cannot score as saved"
    rows, split = held_out_rows(st.need("splits"))
    if split != held.split:
        return None, "it and the result were not scored on the same rows"
    env.emit("final", f"scoring version {prev.version} (saved before the interruption) on {len(rows)} {split} rows")
    try:
        return ctx.evaluate(PromptProgram(candidate, spec, ctx.task_lm), rows, final=True), ""
    except BudgetExceeded as e:
        return None, f"the budget ran out before it was scored ({e.message})"
