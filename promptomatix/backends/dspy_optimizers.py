"""The DSPy optimizers the `dspy` backend runs, each as `fn(run, student) -> compiled program`.

`run` is the backend's `_Run` (dspy_backend.py): it holds the settings (`run.s`), the train/valid examples, the
task and teacher LMs behind our boundary, the metric and the candidate records. Each function records the
settings it resolved (`run.resolved`) and turns the optimizer's own scored programs into candidate records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import dspy

from promptomatix.backends.dspy_evaluate import FullEvalWatch
from promptomatix.backends.dspy_modules import SpecProgram, inner, read_text
from promptomatix.backends.dspy_parallel import ParallelMIPROv2, prefetch_bootstrap
from promptomatix.backends.dspy_proposals import note
from promptomatix.backends.dspy_rescue import GepaWatch, ProposalsFailed, TeacherGaveUp, TeacherStopped
from promptomatix.backends.dspy_settings import _AUTO_VAL, _GEPA_MINIBATCH, _MIPRO_MINIBATCH, _RS_CANDIDATES
from promptomatix.errors import ConfigurationError, OptimizerError


def miprov2(run: Any, student: SpecProgram) -> SpecProgram:
    """Stock MIPROv2 (its serial stretches run in parallel: dspy_parallel.py); every trial becomes a record."""
    try:
        import optuna  # noqa: F401
    except ImportError as e:
        raise ConfigurationError(
            "the miprov2 optimizer needs optuna", hint='install it with `pip install "dspy[optuna]"`'
        ) from e
    s = run.s
    boot, labeled = s.demos
    n_preds = len(inner(student).named_predictors())
    num_candidates, num_trials = s.mipro_counts(n_preds)
    auto = None if num_candidates is not None else s.auto
    v = len(run.valset) if auto is None else min(len(run.valset), _AUTO_VAL[auto])
    minibatch_size = min(s.minibatch_size or _MIPRO_MINIBATCH, v)
    # With auto, DSPy decides minibatching (valset > 50); without, minibatch only if it is smaller than valid.
    minibatch = True if auto is not None else minibatch_size < v
    run.resolved = {
        "dspy_auto": auto,
        "num_candidates": num_candidates,
        "num_trials": num_trials,
        "max_bootstrapped_demos": boot,
        "max_labeled_demos": labeled,
        "minibatch_size": minibatch_size,
    }
    opt = ParallelMIPROv2(  # stock MIPROv2 with its serial stretches run in parallel
        metric=run.metric(),
        prompt_model=run.teacher_lm,
        task_model=run.task_lm,
        max_bootstrapped_demos=boot,
        max_labeled_demos=labeled,
        auto=auto,
        num_candidates=num_candidates,
        num_threads=run.num_threads,
        max_errors=run.max_errors,
        seed=run.ctx.seed,
        init_temperature=s.teacher_temperature,
        verbose=False,
        track_stats=True,
    )
    opt.replay = run.ctx.boundary.greedy("task", "judge")
    opt.rows = run.rows  # the run's pool: the baseline is scored on it while MIPROv2 bootstraps and proposes
    _watch_full_evals(opt, run.trials.full)  # each full-valid trial, kept for a stop inside the search
    compiled = opt.compile(
        student,
        trainset=run.trainset,
        valset=run.valset,
        num_trials=num_trials,
        minibatch=minibatch,
        minibatch_size=minibatch_size,
        seed=run.ctx.seed,
    )
    _mipro_candidates(run, compiled)
    if said := note(*getattr(opt, "proposals_repeated", (0, 0))):  # (stock MIPROv2 has no count)
        run.optimizer_note = said
    return compiled


def _watch_full_evals(opt: Any, on_full: Callable[[Any, float, int], None]) -> None:
    """MIPROv2's trial evaluate (stock or pooled: dspy_parallel.py) tells `on_full` each whole-valid score."""
    inner = opt._optimize_prompt_parameters

    def watched(program: Any, instruction_candidates: Any, demo_candidates: Any, evaluate: Any, *args: Any) -> Any:
        return inner(program, instruction_candidates, demo_candidates, FullEvalWatch(evaluate, on_full), *args)

    opt._optimize_prompt_parameters = watched


def _mipro_candidates(run: Any, compiled: Any) -> None:
    """MIPROv2's scored trial programs become candidate records (DSPy's own metric, not our valid score)."""
    seen = {read_text(t.program) for t in run.tried}
    for key in ("candidate_programs", "mb_candidate_programs"):
        for entry in getattr(compiled, key, None) or []:
            prog = entry.get("program")
            if not isinstance(prog, SpecProgram) or read_text(prog) in seen:
                continue
            seen.add(read_text(prog))
            full = bool(entry.get("full_eval"))
            score = float(entry.get("score", 0.0)) / 100.0
            sc = run.add("miprov2 trial", prog.deepcopy(), f"DSPy {'full valid' if full else 'minibatch'} "
                          f"score {score:.3f} (mean per-example metric x penalty)")  # fmt: skip
            if not full:
                sc.minibatch = score
    for attr in ("trial_logs", "candidate_programs", "mb_candidate_programs"):
        if hasattr(compiled, attr):
            delattr(compiled, attr)


def gepa(run: Any, student: SpecProgram) -> SpecProgram:
    """GEPA with the metric's feedback text; its valid-scored candidates become records."""
    s = run.s
    budget: dict[str, Any] = {"max_metric_calls": s.max_metric_calls} if s.max_metric_calls else {"auto": s.auto}
    run.resolved = {**budget, "reflection_minibatch_size": s.minibatch_size or _GEPA_MINIBATCH}
    watch = GepaWatch(run.trials, student)
    opt = dspy.GEPA(
        metric=run.metric(feedback=True),
        **budget,
        reflection_lm=run.teacher_lm,
        reflection_minibatch_size=s.minibatch_size or _GEPA_MINIBATCH,
        num_threads=run.num_threads,
        track_stats=True,
        seed=run.ctx.seed,
        warn_on_score_mismatch=False,  # the penalty tag makes module- and predictor-level scores agree anyway
        gepa_kwargs={"callbacks": [watch]},  # full-valid scores (kept on a stop) and failed proposals
    )
    try:
        compiled = opt.compile(student, trainset=run.trainset, valset=run.valset)
    except TeacherGaveUp as stop:
        why = (f"GEPA stopped: its last {stop.streak} reflection (teacher) proposals failed in a row "
               f"({watch.proposed} of {watch.started} worked): {_teacher_cause(run.ctx.boundary)}")  # fmt: skip
        raise (TeacherStopped(why) if watch.proposed else ProposalsFailed(why)) from None
    run.optimizer_note = watch.check(_teacher_cause(run.ctx.boundary))
    details = getattr(compiled, "detailed_results", None)
    if details is not None:
        seen = {read_text(t.program) for t in run.tried}
        for i, (prog, score) in enumerate(zip(details.candidates, details.val_aggregate_scores, strict=False)):
            if i == 0 or not isinstance(prog, SpecProgram) or read_text(prog) in seen:
                continue  # candidate 0 is the seed (the initial program); the trial log has the others already
            run.add("gepa candidate", prog.deepcopy(), f"GEPA valid score {score:.3f} (mean metric x penalty)")
        delattr(compiled, "detailed_results")
    return compiled


def _teacher_cause(boundary: Any) -> str:
    """Why the teacher's proposals failed: the provider's error when one was recorded, else its answers."""
    from promptomatix.run_guard import provider_cause

    cause = provider_cause(boundary, "teacher")
    if cause != "no error was recorded":
        return cause
    return ("the teacher model's answers could not be read as a new instruction (a parse failure; "
            "PROMPTOMATIX_VERBOSE=1 shows DSPy's log)")  # fmt: skip


def bootstrap(run: Any, student: SpecProgram) -> SpecProgram:
    """BootstrapFewShot on quick (train rows prefetched in parallel), with random search on larger presets."""
    s = run.s
    boot, labeled = s.demos
    metric = run.metric()
    if s.search_type == "quick" and s.num_candidates is None:
        run.resolved = {"dspy_optimizer": "BootstrapFewShot", "max_bootstrapped_demos": boot,
                         "max_labeled_demos": labeled}  # fmt: skip
        make = functools.partial(dspy.BootstrapFewShot, metric=metric, max_labeled_demos=labeled,
                                 max_errors=run.max_errors)  # fmt: skip
        prefetch_bootstrap([(run.trainset, boot)], student, None, run.num_threads, make, run.rows)  # rows DSPy runs
        return make(max_bootstrapped_demos=boot).compile(student, trainset=run.trainset)
    n = s.num_candidates or _RS_CANDIDATES[s.search_type]
    run.resolved = {"dspy_optimizer": "BootstrapFewShotWithRandomSearch", "num_candidate_programs": n,
                     "max_bootstrapped_demos": boot, "max_labeled_demos": labeled}  # fmt: skip
    rs = dspy.BootstrapFewShotWithRandomSearch(
        metric=metric,
        max_bootstrapped_demos=boot,
        max_labeled_demos=labeled,
        num_candidate_programs=n,
        num_threads=run.num_threads,
        max_errors=run.max_errors,
    )
    return rs.compile(student, trainset=run.trainset, valset=run.valset)


def labeled_fewshot(run: Any, student: SpecProgram) -> SpecProgram:
    """k labelled train rows as demos: no model calls."""
    _boot, k = run.s.demos
    run.resolved = {"dspy_optimizer": "LabeledFewShot", "k": k}
    return dspy.LabeledFewShot(k=k).compile(student, trainset=run.trainset)


OPTIMIZERS: dict[str, Callable[[Any, SpecProgram], SpecProgram]] = {
    "miprov2": miprov2,
    "gepa": gepa,
    "bootstrap": bootstrap,
    "labeled": labeled_fewshot,
}


def optimizer_failed(name: str, error: Exception, boundary: Any) -> OptimizerError:
    """The one-line failure of a DSPy optimizer that raised. Kept quiet, it used to end as a `completed` run (exit
    0) whose 'optimized' prompt was the initial one; a model whose calls failed meanwhile is named as the cause."""
    from promptomatix.run_guard import one_line, provider_cause

    what = one_line(f"{type(error).__name__}: {error}", 240)
    causes = [f"the {role} model's calls failed: {c}" for role in ("task", "teacher")
              if (c := provider_cause(boundary, role)) != "no error was recorded"]  # fmt: skip
    return OptimizerError(
        f"DSPy {name} failed: {what}" + (f" (meanwhile {causes[0]})" if causes else ""),
        hint="run it again with --backend simple_meta_prompt, another --dspy-optimizer or a stronger --teacher-model",
    )
