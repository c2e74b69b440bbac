"""MetricsManager: per-type metrics, feedback, missing fields, length penalty, no shared state."""

from __future__ import annotations

import math

import pytest

from promptomatix.errors import MetricError
from promptomatix.metrics import MetricResult, MetricsManager

LABELS = ["positive", "negative", "neutral"]


def clf(**kw) -> MetricsManager:
    return MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=LABELS, **kw)


def test_wrong_label_scores_zero_with_feedback():
    res = clf().score("classification", {"text": "awful", "label": "negative"}, {"label": "positive"})
    assert res.score == 0.0
    assert res.feedback == "expected 'negative', got 'positive'"


def test_label_normalization_and_extraction():
    mm = clf()
    gold = {"label": "negative"}
    assert mm.score("classification", gold, {"label": "Negative."}).score == 1.0
    assert mm.score("classification", gold, {"label": "Sentiment: Negative."}).score == 1.0
    several = mm.score("classification", gold, {"label": "positive or negative"})
    assert several.score == 0.0 and "several labels" in several.feedback
    none = mm.score("classification", gold, {"label": "meh"})
    assert none.score == 0.0 and "not one of the labels" in none.feedback


def test_label_without_label_set_is_strict_but_reads_after_colon():
    mm = MetricsManager(output_fields=["label"])
    gold = {"label": "negative"}
    assert mm.score("classification", gold, {"label": " NEGATIVE "}).score == 1.0
    assert mm.score("classification", gold, {"label": "Sentiment: Negative."}).score == 1.0
    assert mm.score("classification", gold, {"label": "positive"}).score == 0.0


def test_longer_label_wins_over_its_substring():
    mm = MetricsManager(output_fields=["label"], label_set=["negative", "very negative"])
    assert mm.score("classification", {"label": "very negative"}, {"label": "It is very negative."}).score == 1
    assert mm.score("classification", {"label": "negative"}, {"label": "It is very negative."}).score == 0


def test_missing_gold_field_raises_naming_it():
    with pytest.raises(MetricError, match="'label'"):
        clf().score("classification", {"text": "x"}, {"label": "negative"})


def test_missing_pred_field_scores_zero():
    res = clf().score("classification", {"label": "negative"}, {"other": "negative"})
    assert res.score == 0.0 and res.feedback == "missing field label"
    assert clf().score("classification", {"label": "negative"}, {"label": None}).score == 0.0


def test_unknown_task_type_lists_known_ones():
    with pytest.raises(MetricError) as err:
        clf().get_metrics_for_task("astrology")
    msg = str(err.value)
    assert "unknown task type 'astrology'" in msg
    assert "classification" in msg and "summarization" in msg and "qa" in msg


def test_math_alias_and_reasoning():
    mm = MetricsManager(output_fields=["answer"], lambda_penalty=0)
    metric = mm.get_metrics_for_task("math")
    assert metric({"answer": "42"}, {"answer": "The answer is 42."}) == 1.0
    assert metric({"answer": "#### 1,200.50"}, {"answer": "It costs $1200.5"}) == 1.0
    wrong = mm.score("reasoning", {"answer": "42"}, {"answer": "so 41"})
    assert wrong.score == 0.0 and wrong.feedback == "expected 42, got 41"
    assert "no number found" in mm.score("math", {"answer": "42"}, {"answer": "no idea"}).feedback
    assert mm.score("math", {"answer": "yes"}, {"answer": "Thinking... Answer: Yes."}).score == 1.0


def test_qa_em_and_f1():
    mm = MetricsManager(output_fields=["answer"], lambda_penalty=0)
    assert mm.score("qa", {"answer": "eiffel tower"}, {"answer": "The Eiffel Tower!"}).score == 1.0
    partial = mm.score("qa", {"answer": "the Eiffel Tower"}, {"answer": "Eiffel Tower in Paris"})
    assert partial.score == pytest.approx(2 / 3)
    assert partial.details == {"exact_match": 0.0, "f1": pytest.approx(2 / 3)}
    assert mm.score("qa", {"answer": ["Paris", "City of Paris"]}, {"answer": "city of paris"}).score == 1


def test_multi_label_f1_and_jaccard():
    mm = MetricsManager(output_fields=["labels"], lambda_penalty=0)
    res = mm.score("multi_label", {"labels": ["sports", "politics"]}, {"labels": "Politics, tech"})
    assert res.score == 0.5
    assert res.details["jaccard"] == pytest.approx(1 / 3)
    assert "missing labels: sports" in res.feedback


def test_summarization_and_translation():
    mm = MetricsManager(output_fields=["out"], lambda_penalty=0)
    ex, pred = {"out": "the cat was on the mat"}, {"out": "the cat sat on the mat"}
    assert mm.score("summarization", ex, pred).score == pytest.approx(5 / 6)
    train = mm.score("translation", ex, pred)
    final = mm.score("translation", ex, pred, final=True)
    assert train.score == final.score == pytest.approx(0.6206905839258782)
    assert "bleu" not in train.details and final.details["bleu"] == pytest.approx(0.3799178428257963)


def test_information_extraction_single_json_field():
    mm = MetricsManager(output_fields=["json"], lambda_penalty=0)
    gold = {"json": '{"name": "Ann", "date": "2024-01-02", "amount": 12}'}
    res = mm.score("information_extraction", gold, {"json": '```json\n{"name": "ann", "amount": 12}\n```'})
    # P = 2/2, R = 2/3 -> F1 = 0.8
    assert res.score == pytest.approx(0.8)
    assert res.feedback == "missing field date"
    broken = '{"name": "Ann", "date": "2024-01-02", "amount": 12'
    assert mm.score("extraction", gold, {"json": broken}).score == 1.0
    assert mm.score("extraction", gold, {"json": "sorry"}).score == 0.0


def test_information_extraction_over_output_fields():
    mm = MetricsManager(output_fields=["name", "date"], lambda_penalty=0)
    res = mm.score("information_extraction", {"name": "Ann", "date": "May 1"}, {"name": "Ann"})
    assert res.score == pytest.approx(2 / 3)
    assert res.feedback == "missing field date"


def test_multiple_output_fields_average():
    mm = MetricsManager(output_fields=["label", "topic"], lambda_penalty=0)
    res = mm.score("classification", {"label": "a", "topic": "b"}, {"label": "a", "topic": "c"})
    assert res.score == 0.5
    assert res.feedback == "label: correct: 'a'; topic: expected 'b', got 'c'"


def test_length_penalty_values():
    prompt = " ".join(["word"] * 100)
    off = MetricsManager(output_fields=["label"], lambda_penalty=0.0)
    on = MetricsManager(output_fields=["label"], lambda_penalty=0.01)
    assert off.penalty(prompt) == 1.0
    assert on.length(prompt) == 100
    assert on.penalty(prompt) == pytest.approx(math.exp(-1))
    ex, pred = {"label": "a"}, {"label": "a"}
    res = on.score("classification", ex, pred, prompt_text=prompt)
    assert res.raw_score == 1.0 and res.score == pytest.approx(math.exp(-1))
    assert "length penalty" in res.feedback


def test_two_managers_do_not_interfere():
    prompt = "\n".join(["one two three four five"] * 20)  # 100 words over many lines
    a = MetricsManager(output_fields=["label"], lambda_penalty=0.0)
    b = MetricsManager(output_fields=["label"], lambda_penalty=0.01)
    ma, mb = a.bind("classification", prompt), b.bind("classification", prompt)
    ex, pred = {"label": "x"}, {"label": "x"}
    assert ma(ex, pred) == 1.0
    assert mb(ex, pred) == pytest.approx(math.exp(-1))
    assert ma(ex, pred) == 1.0
    assert a.get_metrics_for_task("classification")(ex, pred, prompt) == 1.0
    assert b.get_metrics_for_task("classification")(ex, pred, prompt) == pytest.approx(math.exp(-1))


def test_training_metric_accepts_dspy_trace_as_third_arg():
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.01)
    metric = mm.get_metrics_for_task("classification")
    ex, pred = {"label": "x"}, {"label": "x"}
    assert metric(ex, pred) == 1.0
    assert metric(ex, pred, [("step", {}, {})]) == 1.0  # stock DSPy bootstrapping passes the trace here
    assert metric(ex, pred, "a b c d", None) == pytest.approx(math.exp(-0.04))
    final = mm.get_final_eval_metrics("classification")
    assert final(ex, pred, "a b c d") == 1.0  # never penalized


def test_invalid_config():
    with pytest.raises(MetricError):
        MetricsManager(output_fields=[])
    with pytest.raises(MetricError):
        MetricsManager(output_fields=["x"], lambda_penalty=-1)


def test_metric_result_penalized_keeps_raw():
    res = MetricResult(0.5, "ok").penalized(0.5)
    assert (res.score, res.raw_score) == (0.25, 0.5)
