"""Review 25 (dspy backend) and review 24 F3: a stop inside MIPROv2/GEPA keeps DSPy's best fully evaluated trial,
GEPA whose teacher never proposed fails, DSPy's/optuna's output stays out of stdout/stderr, ReAct's estimate is a
typical run's, and compiles in threads leave the host's stdout alone."""

from __future__ import annotations

import io
import logging
import sys
import threading

import pytest

from promptomatix.backends import dspy_estimate
from promptomatix.backends.base import PRINTS_ROUTED
from promptomatix.backends.dspy_backend import DSPySettings
from promptomatix.errors import OptimizerError
from promptomatix.lm.boundary import Budget
from tests.test_dspy_backend import GOOD_INSTRUCTION, SMALL, make_ctx, requested_fields, run, teacher_model


def _saving(ctx):
    """Checkpoints and reported candidates of a run, as the session would get them."""
    saved, reported = [], []
    ctx.checkpoint = saved.append
    ctx.on_candidate = reported.append
    return saved, reported


# -- finding 1: a stop inside the search keeps DSPy's best fully evaluated trial ------------------------------


def test_budget_stop_inside_miprov2_keeps_its_best_full_valid_trial():
    ctx, *_ = make_ctx(budget=Budget(max_calls=30))  # the search runs out in trial 2 or 3; trial 1 scored 1.0
    saved, reported = _saving(ctx)
    res, _ = run("miprov2", ctx=ctx)
    assert res.stop_reason.startswith("budget") and "kept DSPy's best fully evaluated trial" in res.stop_reason
    assert res.valid_raw == pytest.approx(1.0) and res.initial_valid_raw == pytest.approx(0.5)
    assert res.best_predict is not None and res.rounds_completed == 1
    trials = [c for c in res.candidates if c.origin == "miprov2 trial"]
    assert trials and "DSPy full valid score" in trials[0].note
    assert any(r.origin == "miprov2 trial" for r in reported)  # `sessions show --candidates` lists them
    assert saved[-1].round == 1 and saved[-1].best.valid_raw == pytest.approx(1.0)


def test_budget_stop_before_any_full_trial_says_why_the_initial_program_is_kept():
    ctx, *_ = make_ctx(budget=Budget(max_calls=20))
    res, _ = run("miprov2", ctx=ctx)
    assert "kept the initial program (no fully evaluated trial" in res.stop_reason
    assert res.valid_raw == res.initial_valid_raw


def test_budget_stop_inside_bootstrap_says_it_cannot_hand_back_trials():
    ctx, *_ = make_ctx(budget=Budget(max_calls=14))
    res, _ = run("bootstrap", ctx=ctx)
    assert "keeps no scored trials to hand back" in res.stop_reason


def test_budget_stop_inside_gepa_keeps_its_best_full_valid_candidate():
    ctx, *_ = make_ctx(budget=Budget(max_calls=32))
    saved, _ = _saving(ctx)
    res, _ = run("gepa", ctx=ctx, max_metric_calls=200)
    assert res.stop_reason.startswith("budget") and "kept DSPy's best fully evaluated trial" in res.stop_reason
    assert res.valid_raw == pytest.approx(1.0) and saved[-1].round == 1


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_ctrl_c_inside_miprov2_saves_the_best_trial_and_optuna_prints_no_traceback():
    ctx, task, *_ = make_ctx()
    answer = task.default
    saved, reported = _saving(ctx)

    def interrupted(messages):
        if any(s.round == 1 for s in saved):  # Ctrl-C in the trial after the one saved as the best so far
            raise KeyboardInterrupt
        return answer(messages)

    task.default = interrupted
    seen = _interrupted_miprov2(ctx)
    assert saved[-1].round == 1 and saved[-1].best.valid_raw == pytest.approx(1.0)
    assert saved[-1].best.origin == "miprov2 trial"
    assert any(r.origin == "miprov2 trial" for r in reported)
    assert not [r for r in seen.records if r.exc_info], [r.getMessage() for r in seen.records]


# -- finding 4: GEPA whose teacher never proposed an instruction ---------------------------------------------


def _prose_teacher(ok_every: int | None):
    """A teacher whose reflections are prose, not the JSON GEPA's proposal asks for, but every `ok_every`-th
    (GEPA retries a failed batch per task: 2 failures in a row lose a proposal)."""
    n = [0]

    def answer(messages):
        n[0] += 1
        if "new_instruction" in requested_fields(messages) and (ok_every is None or n[0] % ok_every):
            return "I would suggest telling the model to look for complaints."
        return teacher_model(messages)

    return answer


def test_gepa_whose_every_reflection_failed_fails_like_miprov2():
    ctx, _task, teacher, _ = make_ctx()
    teacher.default = _prose_teacher(None)
    with pytest.raises(OptimizerError) as err:
        run("gepa", ctx=ctx)
    assert "DSPy gepa failed" in str(err.value) and "reflection (teacher) proposals failed" in str(err.value)
    assert "could not be read" in str(err.value)


def test_gepa_gives_up_on_a_teacher_that_fails_proposal_after_proposal():
    """GEPA swallows each failed reflection and draws another parent: a teacher down kept a run going 20 minutes
    and 1,289 requests. It stops after GIVE_UP_AFTER proposals failed in a row."""
    from promptomatix.backends.dspy_rescue import GIVE_UP_AFTER

    ctx, _task, teacher, _ = make_ctx(rule=lambda m, t: "positive")  # never learns: GEPA would keep reflecting
    teacher.default = _prose_teacher(None)
    with pytest.raises(OptimizerError, match="failed in a row"):
        run("gepa", ctx=ctx, max_metric_calls=2000)
    asked = [c for c in teacher.calls if "new_instruction" in requested_fields(c["messages"])]
    assert 0 < len(asked) <= 3 * (GIVE_UP_AFTER + 1)  # a handful of proposals, not the whole metric budget


def test_gepa_with_some_failed_reflections_says_how_many_in_the_stop_reason():
    ctx, _task, teacher, _ = make_ctx(rule=lambda m, t: "positive")  # never learns: GEPA keeps reflecting
    teacher.default = _prose_teacher(3)
    res, _ = run("gepa", ctx=ctx, max_metric_calls=60)
    assert "GEPA reflection (teacher) proposals failed" in res.stop_reason


# -- review 24 F3 and finding 5: DSPy's output, stdout and threads ---------------------------------------------


def test_a_compile_leaves_other_threads_prints_and_stdout_alone(monkeypatch):
    host = io.StringIO()
    monkeypatch.setattr(sys, "stdout", host)
    ctx, task, *_ = make_ctx()
    answer, started, printed = task.default, threading.Event(), threading.Event()

    def chatty(messages):  # holds the compile's first call until the host has printed
        started.set()
        printed.wait(10)
        return answer(messages)

    task.default = chatty
    worker = threading.Thread(target=run, args=("bootstrap",), kwargs={"ctx": ctx})
    worker.start()
    assert started.wait(10)
    print("HOST line printed while the compile runs")
    printed.set()
    worker.join(30)
    assert "HOST line printed while the compile runs" in host.getvalue()
    assert "Bootstrapped" not in host.getvalue()  # DSPy's own print went to the log
    assert sys.stdout is host


def test_two_compiles_in_threads_leave_stdout_as_it_was(monkeypatch):
    host = io.StringIO()
    monkeypatch.setattr(sys, "stdout", host)
    threads = [threading.Thread(target=run, args=(opt,), kwargs={"ctx": make_ctx(tag=opt)[0]})
               for opt in ("bootstrap", "miprov2", "bootstrap")]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print("HELLO from the host program after the runs")
    assert sys.stdout is host and "HELLO from the host" in host.getvalue()


@pytest.mark.parametrize("optimizer, shown", [("miprov2", "Bootstrapping set"), ("gepa", "Average Metric")])
def test_cli_routed_runs_keep_dspy_prints_and_bars_off_the_stream(monkeypatch, optimizer, shown):
    """The CLI's --json sends stdout to stderr for the run: DSPy's prints and bars must not land there."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    token = PRINTS_ROUTED.set(True)
    try:
        run(optimizer)
        assert shown not in stream.getvalue() and not stream.getvalue().strip()
        monkeypatch.setenv("PROMPTOMATIX_VERBOSE", "1")  # verbose: shown as printed
        run(optimizer)
        assert shown in stream.getvalue()
    finally:
        PRINTS_ROUTED.reset(token)


# -- finding 3: ReAct's dry-run estimate is a typical run's ----------------------------------------------------


@pytest.mark.parametrize("optimizer", ["bootstrap", "labeled"])  # (this fake teacher repeats itself: no miprov2)
def test_react_estimate_is_within_15_percent_of_the_calls_a_run_makes(optimizer):
    ctx, *_ = make_ctx()
    run(optimizer, module="react", ctx=ctx)
    made = ctx.boundary.usage().total.calls
    est = dspy_estimate.expected_dspy(DSPySettings(optimizer=optimizer, module="react", **SMALL[optimizer]), 12, 9).calls
    assert abs(est - made) <= 0.15 * made, (est, made)


def test_held_out_rows_count_react_calls_per_row():
    held_out_row_calls = dspy_estimate.held_out_row_calls
    assert held_out_row_calls(DSPySettings(module="react")) == (2, 2)
    assert held_out_row_calls(DSPySettings(module="react"), per_row=2) == (3, 3)  # and a judge's score
    assert held_out_row_calls(DSPySettings(module="react", optimizer="labeled")) == (2, 1)  # the step is cached
    assert held_out_row_calls(DSPySettings(module="predict")) == (1, 1)
    assert held_out_row_calls(object()) == (1, 1)  # another backend's settings



def test_ctrl_c_in_a_miprov2_trial_leaves_no_optuna_traceback():
    ctx, task, *_ = make_ctx()
    answer = task.default

    def interrupted(messages):
        if GOOD_INSTRUCTION in messages[0]["content"]:  # the first trial of a proposed instruction
            raise KeyboardInterrupt
        return answer(messages)

    task.default = interrupted
    seen = _interrupted_miprov2(ctx)
    assert not [r for r in seen.records if r.exc_info], [r.getMessage() for r in seen.records]


def _interrupted_miprov2(ctx) -> _Capture:
    """Run MIPROv2 until its task model raises KeyboardInterrupt; what optuna logged meanwhile."""
    seen = _Capture()
    optuna_log = logging.getLogger("optuna")
    optuna_log.addHandler(seen)
    try:
        with pytest.raises(KeyboardInterrupt):
            run("miprov2", ctx=ctx)
    finally:
        optuna_log.removeHandler(seen)
    return seen


def test_at_equal_raw_quality_the_dspy_backend_keeps_the_program_with_less_to_read(monkeypatch):
    """MIPROv2's program with 3 demos (35 words more) won on the instruction-only λ penalty at equal raw quality,
    though README promises less to read wins (review 27, #4). Programs stand in as their read text here."""
    from types import SimpleNamespace

    from promptomatix.backends import dspy_backend

    monkeypatch.setattr(dspy_backend, "read_text", lambda program: program)
    better_or_equal = dspy_backend._Run._better_or_equal

    def scored(raw: float, penalized: float, words: int):
        return SimpleNamespace(valid_raw=raw, valid_penalized=penalized, program="w " * words)

    base = scored(1.0, 0.827, 147)
    assert not better_or_equal(None, scored(1.0, 0.932, 182), base)  # no raw gain, reads more: the initial stays
    assert better_or_equal(None, scored(1.0, 0.932, 120), base)  # shorter at equal quality: chosen
    assert better_or_equal(None, scored(1.0, 0.827, 147), base)  # a tie in every respect
    assert better_or_equal(None, scored(1.01, 0.9, 182), base)  # a raw gain pays for more words


def test_gepa_whose_teacher_fails_late_keeps_what_it_found():
    """8 failed proposals in a row after some worked failed the whole run (exit 1, no version), though GEPA had
    found and fully evaluated a better program (review 27, #6)."""
    from tests.test_dspy_backend import instructions_of, truth

    def partly(messages, text):  # the proposed instruction helps on most rows, never all: GEPA keeps reflecting
        good = "complains" in instructions_of(messages) and len(text) % 4
        return truth(text) if good else "positive"

    ctx, _task, teacher, _ = make_ctx(rule=partly)
    n = [0]

    def late_outage(messages):
        if "new_instruction" in requested_fields(messages):
            n[0] += 1
            if n[0] > 2:
                raise RuntimeError("HTTP 500 from the teacher's server")
        return teacher_model(messages)

    teacher.default = late_outage
    res, _ = run("gepa", ctx=ctx, max_metric_calls=2000)
    assert "failed in a row" in res.stop_reason and "(2 of" in res.stop_reason
    assert res.valid_raw > res.initial_valid_raw and "kept DSPy's best fully evaluated trial" in res.stop_reason


@pytest.mark.parametrize("optimizer", ["gepa", "miprov2"])
def test_a_library_callers_stderr_gets_none_of_dspys_log_or_bars(capfd, monkeypatch, optimizer):
    """From Python, DSPy's own INFO handler and GEPA's progress bar wrote to the host's stderr (7.6 KB for these two
    small runs, ~52 KB a real GEPA run); they go to our log (DEBUG), as its prints do."""
    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    run(optimizer)
    err = capfd.readouterr().err
    assert "dspy" not in err and "GEPA Optimization" not in err and "Average Metric" not in err, err[:300]
    print("the host's own line", file=sys.stderr)
    assert "the host's own line" in capfd.readouterr().err  # the host's stderr is left as it was


def test_the_runs_own_progress_and_warnings_written_during_a_compile_still_reach_stderr(capfd, monkeypatch):
    """A proxy on sys.stderr (16b541e) turned the CLI's progress lines and the library's warnings, written from the
    compiling context, into hidden DEBUG records: a dspy run logged to a file showed nothing for its whole compile
    (review 29, #1). Only DSPy's and GEPA's own writers are quieted."""
    from promptomatix.backends import dspy_prints

    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    token = PRINTS_ROUTED.set(True)  # as the CLI does
    try:
        with dspy_prints.dspy_output_to_log():
            print("[baseline] initial valid score 0.457", file=sys.stderr)  # the progress view, logging's lastResort
    finally:
        PRINTS_ROUTED.reset(token)
    assert "[baseline] initial valid score 0.457" in capfd.readouterr().err
