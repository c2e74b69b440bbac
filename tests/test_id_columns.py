"""Id columns are found by name, not by values alone: distinct integers 1..n are often content (an operand, a rank,
a star rating in a small file), and a lone content column is never made the output of an "id → text" task."""

from __future__ import annotations

from typing import Any

import pytest

from promptomatix.task import SpecOverrides, infer_task_spec
from promptomatix.task.heuristics import fields_from_rows, identifier_columns

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]


def split(rows: list[dict[str, Any]], inputs: list[str] | None = None) -> tuple[list[str], list[str]]:
    ins, outs, _ = fields_from_rows(rows, inputs, None)
    return ins, outs


def texts(n: int) -> list[str]:
    return [f"a {WORDS[i % 10]} sentence number {i}" for i in range(n)]


# --- the three broken cases -------------------------------------------------------------------------------------------


def test_a_counting_operand_is_an_input_of_a_generated_arithmetic_set() -> None:
    rows = [{"a": a, "b": (a * 7) % 13 + 20, "sum": a + (a * 7) % 13 + 20} for a in range(1, 11)]
    assert split(rows) == (["a", "b"], ["sum"])
    spec = infer_task_spec("Add two numbers", teacher=None, rows=rows)
    assert spec.input_names == ["a", "b"] and spec.output_names == ["sum"]
    assert not [a for a in spec.assumptions if "identifier" in a]


def test_rank_and_stars_with_one_row_per_value_are_content() -> None:
    rank = [{"rank": i, "title": f"film {WORDS[i]}", "stars": 6 - i} for i in range(1, 6)]
    assert split(rank) == (["rank", "title"], ["stars"])
    stars = [{"review": t, "stars": i + 1} for i, t in enumerate(texts(5))]
    assert split(stars) == (["review"], ["stars"])
    assert identifier_columns(rank, ["rank", "title", "stars"]) == []


@pytest.mark.parametrize("order", [["text", "id"], ["id", "text"]])
def test_text_and_id_alone_never_become_id_to_text(order: list[str]) -> None:
    rows = [{c: (i + 1 if c == "id" else t) for c in order} for i, t in enumerate(texts(8))]
    ins, outs, how = fields_from_rows(rows, None, None)
    assert (ins, outs) == (["text"], ["id"])
    assert "--output-fields" in how and "'text'" in how
    spec = infer_task_spec("Rewrite the text", teacher=None, rows=rows)
    assert spec.input_names == ["text"] and spec.output_names == ["id"]
    assert any("--output-fields" in a for a in spec.assumptions)


# --- ordinary cases stay as they were ---------------------------------------------------------------------------------


def test_review_label_keeps_both() -> None:
    rows = [{"review": t, "label": "positive" if i % 2 else "negative"} for i, t in enumerate(texts(8))]
    assert split(rows) == (["review"], ["label"])


def test_named_id_columns_are_dropped_and_only_they() -> None:
    qa = [{"question_id": 100 + i, "question": f"what is {t}?", "answer": t} for i, t in enumerate(texts(6))]
    assert split(qa) == (["question"], ["answer"])
    nli = [{"idx": i, "premise": t, "hypothesis": t.upper(), "label": i % 2} for i, t in enumerate(texts(6))]
    assert split(nli) == (["premise", "hypothesis"], ["label"])
    idr = [{"id": i + 1, "review": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(6))]
    assert split(idr) == (["review"], ["label"])


@pytest.mark.parametrize("name", ["Unnamed: 0", "", "reviewId", "row", "doc-id"])
def test_pandas_index_camel_case_and_row_number_names_are_ids(name: str) -> None:
    rows = [{name: i, "review": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(6))]
    assert split(rows) == (["review"], ["label"])


def test_a_row_number_name_with_other_values_is_content() -> None:
    rows = [{"no": 10 * i + 3, "review": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(6))]
    assert split(rows) == (["no", "review"], ["label"])


def test_an_explicit_id_input_is_kept() -> None:
    rows = [{"id": i + 1, "review": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts(6))]
    assert split(rows, ["id", "review"]) == (["id", "review"], ["label"])
    spec = infer_task_spec("Classify", teacher=None, given=SpecOverrides(input_fields=["id", "review"]), rows=rows)
    assert spec.input_names == ["id", "review"] and spec.output_names == ["label"]
