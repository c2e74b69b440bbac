"""MIPROv2's serial stretches run in parallel (dspy_parallel.ParallelMIPROv2) and it still computes what stock DSPy
computes: the same demo sets, proposals, trials, chosen program and calls for the same seed."""

from __future__ import annotations

import faulthandler
import json
import re
import threading

import dspy
import pytest

from promptomatix.backends import dspy_backend, dspy_optimizers
from promptomatix.backends.base import RunContext
from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings
from promptomatix.lm.boundary import LMBoundary
from promptomatix.metrics import MetricsManager
from tests.backend_fakes import InFlight
from tests.test_dspy_backend import INITIAL, SPEC, data, requested_fields, right_with_instruction_or_demos, task_model


@pytest.fixture(autouse=True)
def _no_hang():
    """A deadlock in the thread pools ends the test process with the threads' tracebacks instead of hanging."""
    faulthandler.dump_traceback_later(240, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def varied_teacher(messages):
    """Every field gets an instruction that names the request it answers, so a proposal made from another tip,
    demo set or summary than stock DSPy's would be a different candidate."""
    tag = sum(map(ord, "".join(m["content"] for m in messages))) % 9973
    text = f"Say negative if the review complains, otherwise positive (variant {tag})."
    return json.dumps({name: text for name in requested_fields(messages)})


def models(latency=0.01):
    task = InFlight(default=task_model(right_with_instruction_or_demos), latency=latency, model="fake/task")
    return task, InFlight(default=varied_teacher, latency=latency, model="fake/teacher")


def compile_miprov2(task, teacher):
    boundary = LMBoundary({"task": task, "teacher": teacher})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4, seed=3)
    settings = DSPySettings(optimizer="miprov2", num_candidates=6, num_trials=4)
    res = DSPyOptimizer(settings).compile(ctx, INITIAL, data())
    records = [(c.origin, c.instructions, c.n_demos, c.valid_penalized, c.note) for c in res.candidates]
    return res, records, boundary.usage()


def test_parallel_miprov2_computes_what_stock_miprov2_computes(monkeypatch):
    fast, fast_records, fast_usage = compile_miprov2(*models())
    monkeypatch.setattr(dspy_optimizers, "ParallelMIPROv2", dspy.MIPROv2)
    stock, stock_records, stock_usage = compile_miprov2(*models())
    assert fast.prompt == stock.prompt and fast.demos == stock.demos
    assert fast_records == stock_records  # every trial program, in order, with its score
    assert fast.program_json == stock.program_json
    assert fast_usage.total.calls == stock_usage.total.calls  # nothing DSPy would not have asked
    assert fast_usage.by_role["teacher"].calls == stock_usage.by_role["teacher"].calls
    assert fast_usage.total.cached_calls > stock_usage.total.cached_calls  # DSPy's own pass read the prefetch
    assert "variant" in fast.instructions  # a proposal won, so the proposals were compared


def test_bootstrapping_runs_in_parallel_and_dspys_own_pass_reads_the_cache(monkeypatch):
    task, teacher = models(latency=0.02)
    stock_pass = dspy.MIPROv2._bootstrap_fewshot_examples
    ours = dspy_optimizers.ParallelMIPROv2._bootstrap_fewshot_examples
    made: list[int] = []

    def dspy_pass(self, *args, **kw):  # stock MIPROv2's serial bootstrapping, after the prefetch
        before = len(task.calls)
        task.stage = "dspy pass"
        out = stock_pass(self, *args, **kw)
        # train rows only: the valid rows' scoring runs side by side with the bootstrap (see GatedLastRow)
        made.append(sum(_number(c) < 100 for c in task.calls[before:]))
        return out

    def prefetch(self, *args, **kw):
        task.stage = "prefetch"
        try:
            return ours(self, *args, **kw)
        finally:
            task.stage = "other"

    monkeypatch.setattr(dspy.MIPROv2, "_bootstrap_fewshot_examples", dspy_pass)
    monkeypatch.setattr(dspy_optimizers.ParallelMIPROv2, "_bootstrap_fewshot_examples", prefetch)
    res, _records, _usage = compile_miprov2(task, teacher)
    assert made == [0]  # every bootstrap call DSPy made was answered from the cache
    assert task.peak["prefetch"] >= 3  # stock DSPy walks the train rows one at a time: 1 in flight
    assert res.rounds_completed == 1 and res.demos


def compile_bootstrap(task, teacher):
    boundary = LMBoundary({"task": task, "teacher": teacher})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4, seed=3)
    res = DSPyOptimizer(DSPySettings(optimizer="bootstrap", search_type="quick")).compile(ctx, INITIAL, data())
    return res, boundary.usage()


def _number(call: dict) -> int:
    """The row number a task call was about (train rows are numbered below 100, valid rows from 100)."""
    return int(call["messages"][-1]["content"].split("film number ")[1].split()[0])


def test_bootstrap_fewshot_reads_its_train_rows_from_a_parallel_prefetch(monkeypatch):
    task, teacher = models(latency=0.02)
    stock_pass = dspy.BootstrapFewShot._bootstrap
    made: list[int] = []

    def dspy_pass(self, *args, **kw):
        before = len(task.calls)
        out = stock_pass(self, *args, **kw)
        # train rows only: the valid rows' scoring runs side by side with the bootstrap (see GatedLastRow)
        made.append(sum(_number(c) < 100 for c in task.calls[before:]))
        return out

    prefetch = dspy_optimizers.prefetch_bootstrap

    def staged(*args, **kw):
        task.stage = "prefetch"
        try:
            return prefetch(*args, **kw)
        finally:
            task.stage = "other"

    monkeypatch.setattr(dspy.BootstrapFewShot, "_bootstrap", dspy_pass)
    monkeypatch.setattr(dspy_optimizers, "prefetch_bootstrap", staged)
    fast, fast_usage = compile_bootstrap(task, teacher)
    assert made == [0] and fast.demos
    assert task.peak["prefetch"] >= 2  # the rows of a wave at once: DSPy walks them one at a time
    monkeypatch.setattr(dspy_optimizers, "prefetch_bootstrap", lambda *a, **k: None)
    stock, stock_usage = compile_bootstrap(*models())
    assert fast.prompt == stock.prompt and fast.program_json == stock.program_json
    assert fast_usage.total.calls == stock_usage.total.calls
    assert fast_usage.total.cached_calls == stock_usage.total.cached_calls + len(fast.demos)


class GatedLastRow(InFlight):
    """InFlight whose answer for the last valid row (number 108) waits until a train row's call has started: it
    is answered at once when the two run side by side, after a timeout when one waits for the other."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.train_started = threading.Event()
        self.overlapped: list[bool] = []

    def complete(self, messages, **kw):
        number = re.findall(r"film number (\d+)", messages[-1]["content"])
        n = int(number[-1]) if number else -1
        if 0 <= n < 100:
            self.train_started.set()
        elif n == 108 and not self.overlapped:
            self.overlapped.append(self.train_started.wait(timeout=5))
        return super().complete(messages, **kw)


def test_the_baseline_is_scored_while_miprov2_bootstraps_on_the_same_threads(monkeypatch):
    """The initial program's valid rows run while MIPROv2's train rows are bootstrapped, on the same pool: calls in
    flight never exceed num_threads, and the run computes what it computes one after the other."""
    task = GatedLastRow(default=task_model(right_with_instruction_or_demos), latency=0.02, model="fake/task")
    teacher = InFlight(default=varied_teacher, latency=0.02, model="fake/teacher")
    beside, beside_records, beside_usage = compile_miprov2(task, teacher)
    assert task.overlapped == [True]  # a train row started while the baseline's last row was in flight
    assert max(task.peak.values()) <= 4  # num_threads: the baseline took no threads of its own

    monkeypatch.setattr(dspy_backend._Run, "baseline_can_run_beside", lambda self: False)
    alone, alone_records, alone_usage = compile_miprov2(*models())
    assert beside.prompt == alone.prompt and beside.program_json == alone.program_json
    assert beside_records == alone_records and beside.initial_valid_raw == alone.initial_valid_raw
    assert beside_usage.total.calls == alone_usage.total.calls
