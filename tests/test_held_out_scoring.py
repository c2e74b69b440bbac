"""The held-out scoring of both prompts: at once on one pool when no budget can stop it (one stream of calls,
never more than num_threads in flight), the initial prompt first when a budget could (it is the reference)."""

from __future__ import annotations

import threading
import time

import pytest

from promptomatix.backends.base import BackendResult, RunContext
from promptomatix.held_out import score_held_out
from promptomatix.lm.boundary import Budget, LMBoundary
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import MetricsManager
from tests.test_meta_backend import SPEC, rows

ROWS = rows(12)


class Recorder:
    """Predictors that answer after a short wait and keep (prompt, start, end) of every row."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def predictor(self, name: str, right: bool):
        def predict(row):
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            start = time.perf_counter()
            time.sleep(0.02)
            with self.lock:
                self.now -= 1
                self.spans.append((name, start, time.perf_counter()))
            truth = "positive" if "great" in row["review"] else "negative"
            return {"label": truth if right else ("negative" if truth == "positive" else "positive")}

        return predict


def ctx_and_result(budget: Budget | None = None) -> tuple[RunContext, BackendResult]:
    ctx = RunContext(
        boundary=LMBoundary({"task": FakeLM(default="x")}, budget=budget),
        metrics=MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"]),
        spec=SPEC,
        num_threads=4,
    )
    result = BackendResult(backend="fake", prompt="better", instructions="better", valid_raw=1.0,
                           valid_penalized=1.0, initial_prompt="initial", initial_valid_raw=0.0,
                           initial_valid_penalized=0.0)  # fmt: skip
    return ctx, result


def score(budget: Budget | None = None):
    rec = Recorder()
    ctx, result = ctx_and_result(budget)
    result = result.with_predictors(rec.predictor("best", True), rec.predictor("initial", False))
    return score_held_out(ctx, result, ROWS, "test"), rec


def test_both_prompts_are_scored_at_once_on_num_threads_workers():
    held, rec = score()
    assert held.initial.mean == pytest.approx(0.0) and held.best.mean == pytest.approx(1.0)
    assert held.initial.n == held.best.n == len(ROWS)
    first_best = min(s for name, s, _ in rec.spans if name == "best")
    last_initial = max(e for name, _, e in rec.spans if name == "initial")
    assert first_best < last_initial  # one stream: the second prompt did not wait for the first to finish
    assert rec.peak <= 4


def test_under_a_budget_that_could_bind_the_initial_prompt_is_scored_first():
    held, rec = score(Budget(max_tokens=10_000))
    assert held.initial.mean == pytest.approx(0.0) and held.best.mean == pytest.approx(1.0)
    first_best = min(s for name, s, _ in rec.spans if name == "best")
    last_initial = max(e for name, _, e in rec.spans if name == "initial")
    assert last_initial <= first_best


def test_the_verdict_is_about_balanced_accuracy_the_score_it_reports():
    """180 positive and 20 negative test rows: the initial prompt misses 40 positives, the optimized one says
    positive to everything. Row accuracy rises (0.80 → 0.90) but balanced accuracy, the test score shown, falls
    (0.89 → 0.50): the verdict must say worse, not improved (it said improved, p = 0.01, before)."""
    from promptomatix.held_out import verdict

    test = [{"review": f"film {i}", "label": "positive" if i < 180 else "negative"} for i in range(200)]

    def initial(row):
        i = int(row["review"].split()[1])
        return {"label": "negative" if i < 40 or i >= 180 else "positive"}

    ctx, result = ctx_and_result()
    result = result.with_predictors(lambda row: {"label": "positive"}, initial)
    held = score_held_out(ctx, result, test, "test")
    assert held.initial.mean == pytest.approx(0.8889, abs=1e-3) and held.best.mean == pytest.approx(0.5)
    v = verdict(held, result)
    assert v.outcome == "worse"
    assert v.initial_mean == pytest.approx(held.initial.mean) and v.optimized_mean == pytest.approx(held.best.mean)
    assert v.diff == pytest.approx(held.best.mean - held.initial.mean)
    assert (v.wins, v.losses) == (40, 20)  # still row counts
    assert "balanced accuracy" in v.test
