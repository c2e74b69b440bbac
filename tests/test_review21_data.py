"""Review 21 (task-spec inference and data building with the user's own data): F1, F2, F4, F10, F11, F15, F16."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from promptomatix.data import SourceRow, build_data, generate_synthetic, normalize_text, validate_rows
from promptomatix.errors import DataError
from promptomatix.lm.fake import FakeLM, prompt_text
from promptomatix.task import FieldSpec, SpecOverrides, TaskSpec, TaskType, discover_labels, infer_task_spec

TASK = "Classify the sentiment of a movie review"
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa"]  # fmt: skip


def reviews(n: int) -> list[dict[str, Any]]:
    """Distinct user rows of two labels, long enough for the near-duplicate check (five words or more)."""
    return [
        {"review": f"{'a great wonderful' if i % 2 == 0 else 'an awful boring'} {WORDS[i % 16]} film seen {i}",
         "label": "positive" if i % 2 == 0 else "negative"}
        for i in range(n)
    ]  # fmt: skip


def spec_from(rows: list[dict[str, Any]]) -> TaskSpec:
    return infer_task_spec(TASK, teacher=None, rows=rows)


def writer(copy_shown: bool) -> FakeLM:
    """A teacher that writes fresh rows; with `copy_shown` it echoes each example it is shown with a word added."""
    count = iter(range(10_000))

    def answer(messages: list[dict[str, str]]) -> str:
        text = prompt_text(messages)
        if "Answer with exactly one of" in messages[0]["content"]:
            return "{}"  # the blind relabel gives no label: rows are kept unchecked
        k = next(count)
        n = int(re.search(r"Write (\d+) new", text).group(1))
        labels = re.search(r"in order: (.*)\.", text).group(1).split(", ")
        rows = [{"review": f"{WORDS[k % 16]} {WORDS[(k * 5 + j) % 16]} picture number {k * 10 + j} on day {k}",
                 "label": labels[j]} for j in range(n)]  # fmt: skip
        shown = re.search(r"Examples of the format \(do not copy them\): (\[.*\])", text)
        if copy_shown and shown:
            rows[: len(json.loads(shown.group(1)))] = [
                {**r, "review": r["review"] + " really"} for r in json.loads(shown.group(1))
            ]
        return json.dumps({"examples": rows})

    return FakeLM(default=answer)


# --- F1: nothing the teacher is shown, or writes from, derives from the held-out test --------------------------------


def test_rows_shown_to_the_teacher_never_become_held_out_test_rows() -> None:
    user = reviews(12)
    spec = spec_from(user)
    assert spec.sample_rows, "the data's first rows are the teacher's examples"
    teacher = writer(copy_shown=False)
    splits, report = build_data(spec, teacher=teacher, user_rows=user, synthetic_size=30, seed=0)
    shown_texts = [r["review"] for r in spec.sample_rows]
    test_texts = [r["review"] for r in splits.test_rows()]
    assert report.test_sources.get("user"), "the test is still drawn from user rows first"
    assert not set(shown_texts) & set(test_texts), "a row the teacher was shown is in the held-out test"
    prompts = [prompt_text(c["messages"]) for c in teacher.calls]
    user_test = [t for t in test_texts if t in {r["review"] for r in user}]  # synthetic test rows: the teacher's own
    assert user_test and not [t for t in user_test if any(t in p for p in prompts)], "a test row reached the teacher"
    again, _ = build_data(spec, teacher=writer(copy_shown=False), user_rows=user, synthetic_size=30, seed=0)
    assert again.sizes == splits.sizes and again.test_rows() == splits.test_rows()  # seeded, as before


def test_teacher_near_copies_of_user_rows_are_rejected() -> None:
    user = reviews(12)
    spec = spec_from(user)
    splits, report = build_data(spec, teacher=writer(copy_shown=True), user_rows=user, synthetic_size=30, seed=0)
    kept = [r["review"] for r in [*splits.train, *splits.valid, *splits.test_rows()]]
    assert not [t for t in kept if t.endswith(" really")], "a near-copy of a user row was kept"
    assert report.synthetic is not None and report.synthetic.rejected.get("near-duplicate of a user or test row")


def test_a_given_test_row_is_not_shown_to_the_teacher_nor_reworded_into_train() -> None:
    user, test = reviews(12)[2:], reviews(12)[:6]
    spec = spec_from(reviews(12))  # its sample rows are the first data rows: here they are test rows
    teacher = writer(copy_shown=True)
    rep = generate_synthetic(spec, 10, teacher=teacher, seed=0, existing=[*test, *user], held_out=test)
    prompts = [prompt_text(c["messages"]) for c in teacher.calls]
    assert not [t["review"] for t in test if any(t["review"] in p for p in prompts)]
    assert not [r for r in rep.rows if r["review"].endswith(" really")]


# --- F2: an id column is not an input; the same text under two ids does not cross the splits -------------------------


def id_rows() -> list[dict[str, Any]]:
    base = reviews(30)
    return [{"id": k * 1000 + i, **r} for k in range(2) for i, r in enumerate(base)]


def test_an_id_column_is_not_inferred_as_an_input_and_the_assumption_names_it() -> None:
    spec = spec_from(id_rows())
    assert spec.input_names == ["review"] and spec.output_names == ["label"]
    assert "id" not in spec.initial_prompt.split("Given:")[1].split(".")[0]
    line = next(a for a in spec.assumptions if "'id'" in a)
    assert "identifier" in line and "--input-fields review,id" in line
    pandas = [{"Unnamed: 0": i, **r} for i, r in enumerate(reviews(10))]
    assert spec_from(pandas).input_names == ["review"]


def test_an_explicit_id_input_is_kept() -> None:
    spec = infer_task_spec(TASK, teacher=None, given=SpecOverrides(input_fields=["id", "review"]), rows=id_rows())
    assert spec.input_names == ["id", "review"] and spec.output_names == ["label"]


def test_the_same_review_under_two_ids_is_in_one_split_only() -> None:
    rows = id_rows()
    spec = spec_from(rows)
    splits, report = build_data(spec, teacher=None, user_rows=rows, synthetic_size=0, seed=0)
    test = {r["review"] for r in splits.test_rows()}
    assert not test & {r["review"] for r in [*splits.train, *splits.valid]}
    assert report.skipped == {"user: duplicate": 30}


# --- F4: 0/1 labels as JSON numbers are labels; --labels 0,1 is honoured ----------------------------------------------


def numeric_rows() -> list[dict[str, Any]]:
    return [{"review": r["review"], "label": int(r["label"] == "positive")} for r in reviews(40)]


def test_numeric_labels_get_a_label_set_and_a_text_output() -> None:
    spec = spec_from(numeric_rows())
    assert spec.task_type == TaskType.CLASSIFICATION
    assert spec.labels == ["1", "0"] and spec.output_fields[0].type == "str"
    assert "Answer with exactly one of: 1, 0." in spec.initial_prompt
    kept, bad = validate_rows(spec, numeric_rows())
    assert len(kept) == 40 and not bad and kept[0]["label"] == "1"


def test_explicit_labels_for_numeric_outputs_are_honoured() -> None:
    given = SpecOverrides(labels=["0", "1"])
    spec = infer_task_spec(TASK, teacher=None, given=given, rows=numeric_rows())
    assert spec.labels == ["0", "1"] and "Answer with exactly one of: 0, 1." in spec.initial_prompt


# --- F10: the label set is spelled as most rows spell it ----------------------------------------------------------------


def test_labels_take_the_most_common_spelling() -> None:
    rows = [{"l": "POSITIVE "}, *[{"l": "positive"}] * 19, *[{"l": "negative"}] * 20]
    assert discover_labels(rows, "l") == ["positive", "negative"]
    data = [{"review": r["review"], "label": "POSITIVE " if i == 0 else r["label"]} for i, r in enumerate(reviews(40))]
    assert "Answer with exactly one of: positive, negative." in spec_from(data).initial_prompt


# --- F11: train rows that repeat test rows are named as such; the same file twice says so ------------------------------


def test_train_rows_repeating_test_rows_name_the_test_rows() -> None:
    data = reviews(30)
    spec = spec_from(data)
    test = [SourceRow(r, "test.csv", f"line {i + 2}") for i, r in enumerate(data[:10])]
    train = [SourceRow({**r, "review": r["review"].upper() + "!"} if i < 3 else r, "train.csv", f"line {i + 2}")
             for i, r in enumerate(data[7:])]  # fmt: skip
    _, report = build_data(spec, teacher=None, train_rows=train, test_rows=test)
    assert ("train.csv: 3 rows skipped (lines 2, 3, 4: same input as a held-out test row (test.csv lines 9, 10, 11))"
            in report.notes)  # fmt: skip
    assert report.skipped == {"train: same input as a held-out test row": 3}


def test_the_same_file_as_data_and_test_is_one_clear_error() -> None:
    data = reviews(30)
    spec = spec_from(data)
    rows = [SourceRow(r, "reviews.csv", f"line {i + 2}") for i, r in enumerate(data)]
    with pytest.raises(DataError) as err:
        build_data(spec, teacher=None, train_rows=rows, test_rows=list(rows))
    message = str(err.value)
    assert "every usable row of reviews.csv is also a held-out test row" in message
    assert "--test-data-size 0" not in message and "add rows" not in message


# --- F15: dedup keeps meaning-bearing punctuation ------------------------------------------------------------------------


def test_dedup_keeps_operators_and_code_punctuation() -> None:
    assert len({normalize_text(f"What is 2{op}3?") for op in ("+", "-", "*", "//", "/")}) == 5
    assert normalize_text("a*b") != normalize_text("a/b") and normalize_text("x<y") != normalize_text("x>y")
    assert normalize_text("3/5") != normalize_text("3.5")
    spec = TaskSpec(description="Answer the arithmetic question", task_type=TaskType.QA,
                    input_fields=[FieldSpec(name="question")], output_fields=[FieldSpec(name="answer")])  # fmt: skip
    rows = [{"question": f"What is {a}{op}3?", "answer": str(a)} for a in range(2, 12) for op in "+-*/"]
    kept, bad = validate_rows(spec, rows)
    assert len(kept) == 40 and not bad


def test_dedup_still_catches_case_spacing_and_closing_punctuation() -> None:
    same = ["Great film!", "great  film", '"Great film."', "GREAT FILM !!", "great film\u2019".rstrip("\u2019")]
    assert len({normalize_text(t) for t in same}) == 1
    assert normalize_text("don\u2019t stop") == normalize_text("Don't stop.")


# --- F16: --input-fields alone still prefers the column named like an output -----------------------------------------------


def test_input_fields_alone_prefer_the_label_column_and_say_so() -> None:
    rows = [{**r, "source": ("imdb", "rt", "letterboxd")[i % 3]} for i, r in enumerate(reviews(40))]
    spec = infer_task_spec(TASK, teacher=None, given=SpecOverrides(input_fields=["review"]), rows=rows)
    assert spec.output_names == ["label"] and spec.labels == ["positive", "negative"]
    assert any("'label'" in a for a in spec.assumptions)
    assert any("source" in a and "not used" in a for a in spec.assumptions)
