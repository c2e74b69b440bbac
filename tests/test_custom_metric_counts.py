"""A metric the user gives defines quality: candidates are chosen, valid / held-out scores reported and the verdict
computed by it, not by balanced accuracy of the label field (review 16, F0). And the bootstrap CI of balanced
accuracy keeps every label's support, so a constant predictor is not said to maybe be perfect (F4)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from promptomatix import process_input
from promptomatix.held_out import HeldOut, row_weights
from promptomatix.lm.fake import FakeLM, prompt_text
from promptomatix.metrics import Evaluator, MetricRegistry, MetricsManager, default_registry, register_metric
from promptomatix.metrics.evaluator import ExampleRecord
from promptomatix.sessions import SessionStore

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SAY_UNSURE = "Answer unsure when the review is not clearly positive; a wrong positive is costly, a hedge is cheap."


def teacher_writes(prompt: str) -> FakeLM:
    return FakeLM(default=lambda m: json.dumps({"prompt": prompt}) if '{"prompt"' in prompt_text(m) else "{}")


def three_label_rows(n: int) -> list[dict[str, str]]:
    labels = ["positive", "negative", "mixed"]
    return [{"review": f"review number {i} of a film", "label": labels[i % 3]} for i in range(n)]


def test_the_custom_metric_example_prints_its_partial_credit(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("example_custom_metric_counts", EXAMPLES / "custom_metric.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    clients = {"task": FakeLM(default=json.dumps({"label": "mixed"})), "teacher": teacher_writes("Classify it.")}
    result = module.main(clients=clients, sessions_dir=str(tmp_path))
    out = capsys.readouterr().out
    # valid rows are mixed, positive, negative: always 'mixed' earns 1 + 0.5 + 0.5 under partial credit
    assert "valid score with partial credit: 0.667 -> 0.667" in out
    # test rows are mixed, positive, negative, mixed: 1 + 0.5 + 0.5 + 1
    assert "held-out test score with partial credit: 0.750 -> 0.750" in out
    assert result.metrics.optimized_test_score.mean == pytest.approx(result.verdict.optimized_mean)


def test_a_constant_metric_is_reported_as_its_score(tmp_path):
    metric = tmp_path / "always_one.py"
    metric.write_text("def always_one(example, pred):\n    return 1.0\n")
    rows = three_label_rows(36)
    r = process_input(
        raw_input="Classify a movie review as positive, negative or mixed", task_type="classification",
        labels=["positive", "negative", "mixed"], train_data=rows[:12], valid_data=rows[12:21],
        test_data=rows[21:], metric=f"{metric}:always_one", synthetic_data_size=0,
        clients={"task": FakeLM(default=json.dumps({"label": "mixed"})), "teacher": teacher_writes("Classify it.")},
        sessions_dir=str(tmp_path / "sessions"),
    )  # fmt: skip
    m = r.metrics
    assert (m.initial_prompt_score_raw, m.optimized_prompt_score_raw) == (1.0, 1.0)
    for score in (m.initial_test_score, m.optimized_test_score):
        assert (score.mean, score.ci_low, score.ci_high) == (1.0, 1.0, 1.0)
        assert score.balanced_accuracy == pytest.approx(1 / 3)  # still reported beside it
    assert (r.verdict.initial_mean, r.verdict.optimized_mean) == (1.0, 1.0)
    version = SessionStore(tmp_path / "sessions").load(r.session_id).versions[-1]
    assert version.test.mean == 1.0 and version.initial_test.mean == 1.0


def hedging_task(messages) -> str:
    """'positive' for everything, except that told to hedge it answers 'unsure' on the negative reviews."""
    text = prompt_text(messages)
    hedge = "Answer unsure" in text and "meh" in messages[-1]["content"]
    return json.dumps({"label": "unsure" if hedge else "positive"})


def cautious(example, pred) -> float:
    """Correct = 1; a wrong 'positive' is costly (0); any other mistake (a hedge) costs half."""
    gold, got = str(example["label"]), str(pred.get("label"))
    return 1.0 if got == gold else 0.0 if got == "positive" else 0.5


def test_an_asymmetric_cost_metric_chooses_the_candidate_it_prefers(tmp_path):
    # Balanced accuracy ties the two prompts (recall 1 on positive, 0 on negative for both), so it keeps the shorter
    # initial one; the user's metric gives the hedging prompt 0.75 vs 0.5 and it is never worse on a row.
    rows = [{"review": f"review {i} {'fine' if i % 2 else 'meh'}", "label": "positive" if i % 2 else "negative"}
            for i in range(60)]  # fmt: skip
    register_metric("classification", cautious)
    try:
        r = process_input(
            raw_input="Classify a movie review as positive or negative", task_type="classification",
            labels=["positive", "negative"], train_data=rows[:20], valid_data=rows[20:36], test_data=rows[36:],
            synthetic_data_size=0, sessions_dir=str(tmp_path),
            clients={"task": FakeLM(default=hedging_task), "teacher": teacher_writes(SAY_UNSURE)},
        )  # fmt: skip
    finally:
        default_registry.unregister("classification")
    assert SAY_UNSURE in r.best_prompt
    m = r.metrics
    assert m.initial_prompt_score_raw == pytest.approx(0.5) and m.optimized_prompt_score_raw == pytest.approx(0.75)
    assert m.optimized_test_score.mean == pytest.approx(0.75) and m.initial_test_score.mean == pytest.approx(0.5)
    assert r.verdict.outcome == "improved"
    assert (r.verdict.initial_mean, r.verdict.optimized_mean) == pytest.approx((0.5, 0.75))


def test_a_user_metric_is_the_primary_score_and_rows_are_not_weighted():
    # 3 negative rows + 1 positive, always 'positive': balanced accuracy 0.5, the user's metric (1 unless
    # 'negative' is said) 1.0; the report's primary score and CI are the user's.
    reg = MetricRegistry()
    reg.register("classification", lambda ex, pred: 0.0 if pred["label"] == "negative" else 1.0)
    mm = MetricsManager(["label"], registry=reg, label_set=["positive", "negative"])
    rows = [{"review": str(i), "label": "positive" if i == 0 else "negative"} for i in range(4)]
    rep = Evaluator(num_threads=1).run(
        lambda inputs: {"label": "positive"}, rows, mm.scorer("classification"), ["review"], ["label"], "label"
    )
    assert rep.user_metric and rep.balanced_accuracy == 0.5
    assert rep.primary == 1.0 and rep.primary_ci == (1.0, 1.0)
    builtin = Evaluator(num_threads=1).run(
        lambda inputs: {"label": "positive"}, rows, MetricsManager(["label"]).scorer("classification"),
        ["review"], ["label"], "label",
    )  # fmt: skip
    assert not builtin.user_metric and builtin.primary == 0.5
    # the verdict weighs rows as balanced accuracy only when that is the score shown (uneven labels here)
    held = HeldOut("test", None, None, rep, rep, label_field="label")
    assert row_weights(held, rep.records) is None
    held_builtin = HeldOut("test", None, None, builtin, builtin, label_field="label")
    assert row_weights(held_builtin, builtin.records) == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3])


def constant_records(n_majority: int) -> list[ExampleRecord]:
    return [
        ExampleRecord(index=i, inputs={"review": str(i)}, gold={"label": "negative" if i == 0 else "positive"},
                      output={"label": "positive"}, score=float(i != 0), raw_score=float(i != 0), predicted="positive")
        for i in range(n_majority + 1)
    ]  # fmt: skip


@pytest.mark.parametrize("n_majority", [8, 19, 60])
def test_a_constant_predictors_balanced_accuracy_ci_does_not_reach_one(n_majority):
    rep = Evaluator(n_bootstrap=1000, seed=0).summarize(constant_records(n_majority), "label")
    assert rep.balanced_accuracy == 0.5
    assert rep.balanced_accuracy_ci == (0.5, 0.5)
