"""Evaluator: order, error accounting, max_errors, BudgetExceeded, bootstrap CI, classification stats, threads."""

from __future__ import annotations

import time

import pytest

from promptomatix.errors import BudgetExceeded, MetricError
from promptomatix.metrics import Evaluator, MetricsManager, bootstrap_ci

MM = MetricsManager(output_fields=["label"], lambda_penalty=0, label_set=["positive", "negative"])
SCORE = MM.scorer("classification", final=True)


def examples(n: int) -> list[dict]:
    return [{"text": f"t{i}", "label": "positive" if i % 2 == 0 else "negative"} for i in range(n)]


def run(predict, exs, **kw):
    return Evaluator(**kw).run(predict, exs, SCORE, ["text"], ["label"], label_field="label")


def test_records_keep_example_order():
    def predict(inputs):
        i = int(inputs["text"][1:])
        time.sleep(0.01 * (8 - i))  # later examples finish first
        return {"label": "positive" if i % 2 == 0 else "negative"}

    report = run(predict, examples(8))
    assert [r.index for r in report.records] == list(range(8))
    assert [r.inputs["text"] for r in report.records] == [f"t{i}" for i in range(8)]
    assert report.mean == 1.0 and report.n == 8 and report.n_errors == 0
    assert report.records[1].gold == {"label": "negative"} and report.records[1].output == {"label": "negative"}


def test_failed_example_scores_zero_and_is_counted():
    def predict(inputs):
        if inputs["text"] == "t2":
            raise ValueError("model exploded")
        return {"label": "positive" if int(inputs["text"][1:]) % 2 == 0 else "negative"}

    report = run(predict, examples(4))
    assert report.n == 4 and report.n_errors == 1
    assert report.records[2].score == 0.0 and "ValueError: model exploded" in report.records[2].error
    assert report.mean == 0.75
    assert report.prediction_counts["<error>"] == 1


def test_max_errors_stops_early():
    def predict(inputs):
        if int(inputs["text"][1:]) % 2:
            raise RuntimeError("boom")
        return {"label": "positive"}

    report = run(predict, examples(40), num_threads=1, max_errors=2)
    assert report.stopped_early
    assert report.n_errors >= 2
    assert report.n < 10 and report.n_skipped == 40 - report.n


def test_budget_exceeded_propagates():
    calls = []

    def predict(inputs):
        calls.append(inputs["text"])
        if inputs["text"] == "t3":
            raise BudgetExceeded("budget spent", limit="calls")
        time.sleep(0.01)
        return {"label": "positive"}

    with pytest.raises(BudgetExceeded):
        run(predict, examples(200), num_threads=2)
    assert len(calls) < 200  # the rest were cancelled


def test_metric_error_propagates():
    with pytest.raises(MetricError, match="'label'"):
        Evaluator().run(lambda i: {"label": "x"}, [{"text": "a"}], SCORE, ["text"], ["label"])


def test_bootstrap_ci_deterministic_and_contains_mean():
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    lo, hi = bootstrap_ci(scores, n_bootstrap=1000, seed=0)
    assert (lo, hi) == bootstrap_ci(scores, n_bootstrap=1000, seed=0)
    assert lo < 0.7 < hi
    assert lo >= 0.0 and hi <= 1.0
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)
    assert bootstrap_ci([]) == (0.0, 0.0)

    def predict(inputs):
        return {"label": "positive"}

    a, b = run(predict, examples(20), seed=3), run(predict, examples(20), seed=3)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low <= a.mean <= a.ci_high and a.ci_low < a.ci_high


def test_constant_predictor_does_not_look_good():
    report = run(lambda inputs: {"label": "Positive."}, examples(8))
    assert report.accuracy == 0.5 and report.mean == 0.5
    assert report.balanced_accuracy == 0.5
    # positive: P=0.5, R=1 -> F1=2/3; negative: F1=0 -> macro 1/3
    assert report.macro_f1 == pytest.approx(1 / 3)
    assert report.prediction_counts == {"positive": 8}
    assert report.label_counts == {"negative": 4, "positive": 4}

    skewed = [{"text": f"t{i}", "label": "negative" if i else "positive"} for i in range(10)]
    report = run(lambda inputs: {"label": "negative"}, skewed)
    assert report.accuracy == pytest.approx(0.9)
    assert report.balanced_accuracy == pytest.approx(0.5)
    assert report.primary == pytest.approx(0.5)


def test_invalid_predictions_are_counted():
    report = run(lambda inputs: {"label": "no idea"}, examples(4))
    assert report.prediction_counts == {"<invalid>": 4}
    assert report.accuracy == 0.0 and report.macro_f1 == 0.0


def test_parallel_threads_overlap():
    def predict(inputs):
        time.sleep(0.1)
        return {"label": "positive"}

    start = time.perf_counter()
    report = run(predict, examples(16), num_threads=4)
    elapsed = time.perf_counter() - start
    assert report.n == 16
    assert elapsed < 0.9  # ~0.4 s on 4 threads; sequential would be 1.6 s


def test_penalized_and_raw_means_reported():
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.01)
    score = mm.scorer("classification", prompt_text=" ".join(["w"] * 100))
    report = Evaluator().run(lambda i: {"label": "a"}, [{"text": "x", "label": "a"}], score, ["text"], ["label"])
    assert report.mean_raw == 1.0
    assert report.mean == pytest.approx(0.36787944117144233)
    assert report.records[0].raw_score == 1.0
