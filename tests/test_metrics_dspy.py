"""Stock-DSPy compatibility: dspy.Example / dspy.Prediction inputs, DSPy's metric call shapes, GEPA feedback."""

from __future__ import annotations

import math

import dspy
import pytest

from promptomatix.metrics import MetricsManager

PROMPT = " ".join(["word"] * 100)


def mm() -> MetricsManager:
    return MetricsManager(output_fields=["label"], lambda_penalty=0.01, label_set=["positive", "negative"])


def test_example_and_prediction_fields():
    ex = dspy.Example(text="awful", label="negative").with_inputs("text")
    assert mm().score("classification", ex, dspy.Prediction(label="Negative.")).score == 1.0
    assert mm().score("classification", ex, dspy.Prediction(label="positive")).score == 0.0
    missing = mm().score("classification", ex, dspy.Prediction(reasoning="hmm"))
    assert missing.feedback == "missing field label"


def test_bound_metric_called_as_dspy_does():
    metric = mm().bind("classification", PROMPT)
    ex = dspy.Example(text="awful", label="negative").with_inputs("text")
    pred = dspy.Prediction(label="negative")
    assert metric(ex, pred) == pytest.approx(math.exp(-1))  # Evaluate
    assert metric(ex, pred, [("predictor", {}, pred)]) == pytest.approx(math.exp(-1))  # BootstrapFewShot
    assert metric(ex, pred, None, "predict", None) == pytest.approx(math.exp(-1))  # GEPA shape


def test_dspy_evaluate_with_bound_metric():
    class Constant(dspy.Module):
        def forward(self, text):
            return dspy.Prediction(label="negative")

    devset = [
        dspy.Example(text="awful", label="negative").with_inputs("text"),
        dspy.Example(text="great", label="positive").with_inputs("text"),
    ]
    evaluate = dspy.Evaluate(devset=devset, metric=mm().bind("classification", PROMPT), num_threads=1)
    result = evaluate(Constant())
    assert result.score == pytest.approx(100 * math.exp(-1) / 2, rel=1e-3)


def test_feedback_metric_returns_prediction():
    metric = mm().feedback_metric("classification")
    out = metric(dspy.Example(label="negative"), dspy.Prediction(label="positive"), None, "predict", None)
    assert isinstance(out, dspy.Prediction)
    assert out.score == 0.0 and out.feedback == "expected 'negative', got 'positive'"
