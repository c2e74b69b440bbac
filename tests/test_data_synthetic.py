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


#: Words that make a fake review read as its label to the fake relabeler (the label word itself would be a leak).
CUE = {"positive": "lovely", "negative": "dreadful"}


def review_text(batch: int, i: int, label: str, hint: str) -> str:
    """Distinct words per row (no near-duplicates), the hint without its 'topic:' keys, and the label's cue."""
    unique = " ".join(f"w{batch}x{i}x{k}" for k in range(6))
    return f"A {CUE.get(label, 'plain')} film {unique} ({hint.replace(':', '')})"


def relabeler(messages: list[dict[str, str]]) -> str | None:
    """The blind relabel: the review's cue decides, as a reader would; None for other prompts."""
    if "Answer with exactly one of" not in messages[0]["content"]:
        return None
    user = messages[-1]["content"]
    read = lambda text: "negative" if "dreadful" in text else "positive"  # noqa: E731
    if "Input 1:" in user:  # a batch: one label per input, in order
        return json.dumps({"labels": [read(part) for part in re.split(r"Input \d+:", user)[1:]]})
    return json.dumps({"label": read(user)})


def obedient(messages: list[dict[str, str]]) -> str:
    """A teacher that does exactly what the prompt asks (and relabels honestly)."""
    if (answer := relabeler(messages)) is not None:
        return answer
    batch, count, labels, hint = _plan(messages)
    rows = [{"review": review_text(batch, i, labels[i], hint), "label": labels[i]} for i in range(count)]
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
        if (answer := relabeler(messages)) is not None:
            return answer
        batch, count, _labels, hint = _plan(messages)
        if batch < 2:  # first round ignores the target labels: all positive
            rows = [{"review": review_text(batch, i, "positive", hint), "label": "positive"} for i in range(count)]
            return json.dumps({"examples": rows})
        return obedient(messages)

    lm = FakeLM(default=stubborn_then_obedient)
    rep = generate_synthetic(SPEC, 10, teacher=lm, seed=3, batch_size=5, max_workers=2)
    labels = [r["label"] for r in rep.rows]
    assert len(rep.rows) == 10 and labels.count("positive") == 5 and labels.count("negative") == 5
    assert rep.rejected == {"label cap reached": 5}
    assert rep.rounds == 2
    asks = [prompt_text(c["messages"]) for c in lm.calls if "Write 5 new" in prompt_text(c["messages"])]
    assert "in order: negative, negative, negative, negative, negative." in asks[-1]


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


def test_a_teacher_that_writes_nothing_stops_after_two_rounds_of_bounded_size() -> None:
    """10,000 rows asked of a teacher that writes nothing once cost 4,092 calls before "stalled"."""
    lm = FakeLM(default="I cannot help with that")
    rep = generate_synthetic(SPEC, 10_000, teacher=lm, seed=0, batch_size=5, relabel_check=False)
    assert rep.rows == [] and rep.stop_reason == "stalled" and rep.rounds == 2
    assert len(lm.calls) <= 2 * 50


def test_budget_stops_generation_and_keeps_rows() -> None:
    lock = threading.Lock()
    state = {"n": 0}

    def limited(messages: list[dict[str, str]]) -> str:
        with lock:
            state["n"] += 1
            if state["n"] > 2 + 2:  # two batches and their relabels
                raise BudgetExceeded("calls spent", limit="calls")
        return obedient(messages)

    rep = generate_synthetic(SPEC, 20, teacher=FakeLM(default=limited), seed=0, batch_size=5, max_workers=1)
    assert rep.stop_reason == "budget" and len(rep.rows) == 10


def test_budget_reached_during_the_relabels_keeps_the_checked_rows() -> None:
    state = {"n": 0}

    def limited(messages: list[dict[str, str]]) -> str:
        state["n"] += 1
        if state["n"] > 3:  # batch 1, its relabel, batch 2: the budget ends before batch 2's relabel
            raise BudgetExceeded("calls spent", limit="calls")
        return obedient(messages)

    rep = generate_synthetic(SPEC, 10, teacher=FakeLM(default=limited), seed=0, batch_size=5, max_workers=1)
    assert rep.stop_reason == "budget" and len(rep.rows) == 5 and rep.checked == 5
    assert rep.rejected == {"not checked (budget reached)": 5}


def test_verify_pass_rejects_rows() -> None:
    lm = FakeLM(rules=[("Check each example", json.dumps({"keep": [0, 2]}))], default=obedient)
    rep = generate_synthetic(SPEC, 4, teacher=lm, seed=0, batch_size=4, max_workers=1, verify=True, max_batches=1)
    assert len(rep.rows) == 2 and rep.rejected == {"rejected by verifier": 2}
    assert len(lm.calls) == 3  # the batch, the verifier, and one blind relabel of the batch


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
        b = re.search(r"draft (\d+)", text).group(1)
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


def _single_teacher(write):
    """A one-example-per-call teacher (the local path): `write(label, index)` gives the review text."""

    def answer(messages: list[dict[str, str]]) -> str:
        if (relabel := relabeler(messages)) is not None:
            return relabel
        text = prompt_text(messages)
        label = re.search(r"correct label is: (\w+)", text).group(1)
        index = int(re.search(r"draft (\d+)", text).group(1))
        return json.dumps({"review": write(label, index)})

    return FakeLM(default=answer)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("This is batch 22 of the movie reviews, a lovely one", "prompt/meta text in the input"),
        ("topic: film and music; a lovely evening at the cinema", "prompt/meta text in the input"),
        ("This is a movie review with a positive sentiment.", "the input describes itself instead of being an example"),
        ("Honestly the sentiment here is positive, I liked it", "the input states its own label"),
        ("The [noun_1] was lovely and the [noun_2] too", "template placeholder in the input"),
        ("A lovely film. This includes [mention character's traits].", "template placeholder in the input"),
        ("Then {name} thought the film was lovely", "template placeholder in the input"),
        ("<placeholder> lovely film", "template placeholder in the input"),
    ],
)
def test_leaks_and_placeholders_are_dropped_and_counted(text: str, reason: str) -> None:
    lm = _single_teacher(lambda label, i: text if i == 0 else f"A {CUE[label]} film, take {i} w{i}a w{i}b w{i}c")
    rep = generate_synthetic(SPEC, 4, teacher=lm, seed=0, batch_size=1, max_workers=1)
    assert rep.rejected.get(reason) == 1, rep.rejected
    assert all(text != r["review"] for r in rep.rows) and len(rep.rows) == 4
    relabelled = [c for c in lm.calls if "Answer with exactly one of" in c["messages"][0]["content"]]
    assert not any(text in prompt_text(c["messages"]) for c in relabelled)  # rejected before paying a relabel


def test_near_duplicates_of_the_same_label_are_dropped_contrasts_are_kept() -> None:
    base = "film with a great cast and a fine story, take 0"

    def write(label: str, i: int) -> str:
        if i == 2:  # row 0 (same label) with one more word
            return f"A {CUE[label]} {base} again"
        return f"A {CUE[label]} {base}" if i in (0, 1) else f"{CUE[label]} {i} q{i}"

    rep = generate_synthetic(SPEC, 4, teacher=_single_teacher(write), seed=0, batch_size=1, max_workers=1)
    assert rep.rejected.get("near-duplicate") == 1 and len(rep.rows) == 4
    assert f"A dreadful {base}" in [r["review"] for r in rep.rows]  # the other label's near-twin is a contrast


def test_rows_whose_label_a_blind_relabel_disputes_are_dropped() -> None:
    """The teacher writes a dreadful review for a 'positive' slot; the blind relabel says negative: dropped."""
    wrong = {0, 3}

    def write(label: str, i: int) -> str:
        cue = CUE["negative" if label == "positive" and i in wrong else label]
        return f"A {cue} film, take {i} w{i}a w{i}b w{i}c"

    lm = _single_teacher(write)
    rep = generate_synthetic(SPEC, 6, teacher=lm, seed=0, batch_size=1, max_workers=2)
    disputed = rep.rejected.get("label disagrees with a blind relabel", 0)
    assert disputed >= 1 and rep.checked == rep.agreed + disputed
    for row in rep.rows:  # every kept row reads as its label
        assert CUE[row["label"]] in row["review"]
    relabels = [c for c in lm.calls if "Answer with exactly one of" in c["messages"][0]["content"]]
    assert relabels and all("correct label" not in prompt_text(c["messages"]) for c in relabels)  # blind
    assert all(c["json_schema"]["properties"]["label"]["enum"] == ["positive", "negative"] for c in relabels)


def test_a_failed_relabel_keeps_the_row_as_unchecked() -> None:
    def answer(messages: list[dict[str, str]]) -> str:
        if "Answer with exactly one of" in messages[0]["content"]:
            return "no idea"
        index = int(re.search(r"draft (\d+)", prompt_text(messages)).group(1))
        return json.dumps({"review": f"An ordinary film, take {index} w{index}a w{index}b"})

    rep = generate_synthetic(SPEC, 2, teacher=FakeLM(default=answer), seed=0, batch_size=1, max_workers=1)
    assert len(rep.rows) == 2 and rep.unchecked == 2 and rep.checked == 0


def test_checked_generation_repeats_for_a_seed() -> None:
    def run(seed: int) -> list[dict]:
        wrong = lambda label, i: f"A {CUE['negative' if i % 3 == 0 else label]} film {i} w{i}a w{i}b"  # noqa: E731
        return generate_synthetic(SPEC, 8, teacher=_single_teacher(wrong), seed=seed, batch_size=1, max_workers=4).rows

    assert run(5) == run(5)
