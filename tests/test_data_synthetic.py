"""Synthetic data: validation, dedup, balance, top-up, verify, budget stop, seeded reproducibility."""

from __future__ import annotations

import json
import re
import threading

import pytest

from promptomatix.data import diversity_hint, generate_synthetic
from promptomatix.errors import BudgetExceeded
from promptomatix.lm.fake import FakeLM, prompt_text
from promptomatix.task import FieldSpec, TaskSpec, TaskType

SPEC = TaskSpec(
    description="Classify the sentiment of a movie review as positive or negative",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="review")],
    output_fields=[FieldSpec(name="label", labels=["positive", "negative"])],
)


def _plan(messages: list[dict[str, str]]) -> tuple[int, int, list[str], str]:
    text = prompt_text(messages)
    count = int(re.search(r"Write (\d+) new", text).group(1))
    batch = int(re.search(r"Diversity for batch (\d+): (.*)\.", text).group(1))
    hint = re.search(r"Diversity for batch \d+: (.*)\.", text).group(1)
    m = re.search(r"in order: (.*)\.", text)
    labels = m.group(1).split(", ") if m else ["positive"] * count
    return batch, count, labels, hint


def obedient(messages: list[dict[str, str]]) -> str:
    """A teacher that does exactly what the prompt asks."""
    batch, count, labels, hint = _plan(messages)
    rows = [{"review": f"Review {batch}-{i} ({hint})", "label": labels[i]} for i in range(count)]
    return json.dumps({"examples": rows})


def test_obedient_teacher_fills_balanced_rows_in_parallel() -> None:
    lm = FakeLM(default=obedient, latency=0.01)
    rep = generate_synthetic(SPEC, 30, teacher=lm, seed=1, batch_size=5, max_workers=4)
    assert len(rep.rows) == 30 and rep.stop_reason == "complete"
    assert rep.generated == 30 and rep.rejected == {} and rep.batches == 6 and rep.rounds == 1
    labels = [r["label"] for r in rep.rows]
    assert labels.count("positive") == labels.count("negative") == 15
    # The schema carries the label enum; every batch asked for a mix of labels.
    schema = lm.calls[0]["json_schema"]["properties"]["examples"]["items"]
    assert schema["properties"]["label"]["enum"] == ["positive", "negative"]
    assert all("positive, negative" in prompt_text(c["messages"]) for c in lm.calls)


def test_validation_dedup_and_reasons_counted() -> None:
    answer = {
        "examples": [
            {"review": "Great!", "label": "POSITIVE"},  # canonicalised
            {"review": "great", "label": "positive"},  # duplicate after normalisation
            {"review": "Meh", "label": "neutral"},  # not in label set
            {"review": "", "label": "negative"},  # empty
            {"label": "negative"},  # missing input
            "just a string",  # not an object
            {"review": "Bad", "label": "negative", "extra": 1},  # extra key dropped
        ]
    }
    lm = FakeLM(responses=[json.dumps(answer)], default='{"examples": []}')
    rep = generate_synthetic(SPEC, 2, teacher=lm, seed=0, max_workers=1, existing=[{"review": "Bad!", "label": "x"}])
    assert rep.rows == [{"review": "Great!", "label": "positive"}]
    assert rep.generated == 7
    assert rep.rejected == {
        "duplicate": 2,  # "great" and "Bad" (already in existing rows)
        "label not in label set": 1,
        "empty field 'review'": 1,
        "missing field 'review'": 1,
        "not an object": 1,
    }
    assert rep.stop_reason == "max_batches" and rep.batches == 3  # 3 x ceil(2 / 5) batches at most


def test_balance_caps_labels_and_top_up_asks_for_the_missing_class() -> None:
    def stubborn_then_obedient(messages: list[dict[str, str]]) -> str:
        batch, count, _labels, _ = _plan(messages)
        if batch < 2:  # first round ignores the target labels: all positive
            return json.dumps({"examples": [{"review": f"p{batch}-{i}", "label": "positive"} for i in range(count)]})
        return obedient(messages)

    lm = FakeLM(default=stubborn_then_obedient)
    rep = generate_synthetic(SPEC, 10, teacher=lm, seed=3, batch_size=5, max_workers=2)
    labels = [r["label"] for r in rep.rows]
    assert len(rep.rows) == 10 and labels.count("positive") == 5 and labels.count("negative") == 5
    assert rep.rejected == {"label cap reached": 5}
    assert rep.rounds == 2
    assert "in order: negative, negative, negative, negative, negative." in prompt_text(lm.calls[-1]["messages"])


def test_top_up_after_junk_and_duplicates() -> None:
    lm = FakeLM(
        responses=[
            "lol not json",
            json.dumps([{"review": "same", "label": "positive"}] * 4),
        ],
        default=obedient,
    )
    rep = generate_synthetic(SPEC, 6, teacher=lm, seed=0, batch_size=3, max_workers=1)
    assert len(rep.rows) == 6 and rep.stop_reason == "complete"
    assert rep.failed_batches == {"unparseable output": 1}
    assert rep.rejected["duplicate"] == 3
    assert rep.rounds >= 2


def test_max_batches_bounds_a_useless_teacher() -> None:
    lm = FakeLM(default="I cannot help with that")
    rep = generate_synthetic(SPEC, 10, teacher=lm, seed=0, batch_size=5, max_batches=4)
    assert rep.rows == [] and rep.stop_reason in {"stalled", "max_batches"}
    assert len(lm.calls) <= 4


def test_budget_stops_generation_and_keeps_rows() -> None:
    lock = threading.Lock()
    state = {"n": 0}

    def limited(messages: list[dict[str, str]]) -> str:
        with lock:
            state["n"] += 1
            if state["n"] > 2:
                raise BudgetExceeded("calls spent", limit="calls")
        return obedient(messages)

    rep = generate_synthetic(SPEC, 20, teacher=FakeLM(default=limited), seed=0, batch_size=5, max_workers=1)
    assert rep.stop_reason == "budget" and len(rep.rows) == 10


def test_verify_pass_rejects_rows() -> None:
    lm = FakeLM(rules=[("Check each example", json.dumps({"keep": [0, 2]}))], default=obedient)
    rep = generate_synthetic(SPEC, 4, teacher=lm, seed=0, batch_size=4, max_workers=1, verify=True, max_batches=1)
    assert len(rep.rows) == 2 and rep.rejected == {"rejected by verifier": 2}
    assert len(lm.calls) == 2


def test_seeded_reproducibility() -> None:
    def run(seed: int) -> tuple[list[dict], list[str]]:
        lm = FakeLM(default=obedient, latency=0.002)
        rep = generate_synthetic(SPEC, 20, teacher=lm, seed=seed, batch_size=4, max_workers=4)
        prompts = sorted(prompt_text(c["messages"]) for c in lm.calls)
        return rep.rows, prompts

    rows_a, prompts_a = run(7)
    rows_b, prompts_b = run(7)
    rows_c, prompts_c = run(8)
    assert rows_a == rows_b and prompts_a == prompts_b
    assert prompts_a != prompts_c and rows_a != rows_c
    assert [diversity_hint(7, i) for i in range(5)] != [diversity_hint(8, i) for i in range(5)]
    assert len({diversity_hint(7, i) for i in range(5)}) > 1


def test_non_classification_has_no_label_targets() -> None:
    spec = TaskSpec(
        description="Summarize",
        task_type=TaskType.SUMMARIZATION,
        input_fields=[FieldSpec(name="text")],
        output_fields=[FieldSpec(name="summary")],
    )

    def answer(messages: list[dict[str, str]]) -> str:
        text = prompt_text(messages)
        assert "in order" not in text
        b = re.search(r"batch (\d+)", text).group(1)
        return json.dumps({"examples": [{"text": f"long text {b}", "summary": "short"}]})

    rep = generate_synthetic(spec, 3, teacher=FakeLM(default=answer), seed=0, batch_size=1)
    assert len(rep.rows) == 3


@pytest.mark.parametrize("n", [0, -1])
def test_nothing_requested(n: int) -> None:
    assert generate_synthetic(SPEC, n, teacher=FakeLM(), seed=0).rows == []


def test_verifier_also_checks_single_example_generation() -> None:
    """With a local teacher (one example per call) the optional second pass still runs on every example."""

    def answer(messages: list[dict[str, str]]) -> str:
        text = prompt_text(messages)
        if "Check each example" in text:
            return json.dumps({"keep": [0] if "good film" in text else []})
        good = "positive" in text.split("correct")[-1][:40]
        return json.dumps({"review": "a good film indeed" if good else "a dull film indeed"})

    rep = generate_synthetic(SPEC, 4, teacher=FakeLM(default=answer), seed=0, batch_size=1, max_batches=4, verify=True)
    assert rep.rejected.get("rejected by verifier", 0) >= 1
    assert all(r["review"] == "a good film indeed" for r in rep.rows)
