"""Spec inference with a scripted teacher: full inference, overrides, junk answers, data-driven fields."""

from __future__ import annotations

import json

import pytest

from promptomatix.errors import BudgetExceeded, ConfigurationError, DataError, LMCallError
from promptomatix.lm.fake import FakeLM
from promptomatix.task import (
    FieldSpec,
    SpecOverrides,
    TaskSpec,
    TaskType,
    estimate_spec_calls,
    extract_labels,
    guess_task_type,
    infer_task_spec,
)

DESC = "Classify the sentiment of a movie review as positive or negative"

SPEC_ANSWER = {
    "task_type": "classification",
    "input_fields": [{"name": "review", "type": "str", "description": "a movie review"}],
    "output_fields": [{"name": "sentiment", "type": "str", "description": "the sentiment"}],
    "labels": ["positive", "negative"],
    "output_format": "one lowercase word",
}
ROWS_ANSWER = {
    "sample_rows": [
        {"review": "Loved every minute.", "sentiment": "Positive"},
        {"review": "A dull mess.", "sentiment": "negative"},
        {"review": "Whatever", "sentiment": "meh"},  # label outside the set: dropped
    ],
    "initial_prompt": "Read the movie review and say whether it is positive or negative.",
}


def test_full_inference_uses_two_structured_calls() -> None:
    lm = FakeLM(responses=[json.dumps(SPEC_ANSWER), json.dumps(ROWS_ANSWER)])
    spec = infer_task_spec(DESC, teacher=lm)
    assert len(lm.calls) == 2
    assert all(c["json_schema"] for c in lm.calls)
    assert lm.calls[0]["json_schema"]["properties"]["task_type"]["enum"][0] == "classification"
    assert spec.task_type == TaskType.CLASSIFICATION
    assert spec.input_names == ["review"] and spec.output_names == ["sentiment"]
    assert spec.label_field == "sentiment" and spec.labels == ["positive", "negative"]
    assert spec.output_format == "one lowercase word"
    assert spec.sample_rows == [
        {"review": "Loved every minute.", "sentiment": "positive"},
        {"review": "A dull mess.", "sentiment": "negative"},
    ]
    # The baseline prompt is built from the user's description, not written by the teacher.
    assert spec.initial_prompt.startswith("Classify the sentiment of a movie review as positive or negative.")
    assert "initial_prompt" not in lm.calls[-1]["json_schema"]["properties"]
    assert spec.given == ["description"]
    assert any("task_type inferred by teacher" in a for a in spec.assumptions)
    # Round-trips through JSON (sessions store it) and rejects unknown keys.
    assert TaskSpec.model_validate_json(spec.model_dump_json()) == spec
    with pytest.raises(ValueError):
        TaskSpec.model_validate({**spec.model_dump(), "surprise": 1})


def test_partial_overrides_are_kept_and_not_asked_for() -> None:
    lm = FakeLM(
        responses=[
            json.dumps({**SPEC_ANSWER, "task_type": "summarization", "input_fields": ["junk"]}),
            json.dumps(ROWS_ANSWER),
        ]
    )
    given = SpecOverrides(task_type="classification", input_fields=["review"], output_fields=["sentiment"])
    spec = infer_task_spec(DESC, teacher=lm, given=given)
    # Only the output format is asked for: labels are spelled out in the description, the rest was given.
    assert set(lm.calls[0]["json_schema"]["properties"]) == {"output_format"}
    prompt = lm.calls[0]["messages"][-1]["content"]
    assert "Task type (fixed): classification" in prompt and "task_type is one of" not in prompt
    assert spec.task_type == TaskType.CLASSIFICATION  # the teacher's "summarization" is ignored
    assert spec.input_names == ["review"] and spec.output_names == ["sentiment"]
    assert spec.labels == ["positive", "negative"]
    assert spec.output_format == "one lowercase word"
    assert {"description", "task_type", "input_fields", "output_fields"} <= set(spec.given)
    assert not any(a.startswith(("task_type", "input fields", "output field")) for a in spec.assumptions)

    lm2 = FakeLM(responses=[json.dumps(ROWS_ANSWER)])
    spec2 = infer_task_spec(DESC, teacher=lm2, given=given.model_copy(update={"output_format": "lowercase"}))
    assert len(lm2.calls) == 1 and "sample_rows" in lm2.calls[0]["json_schema"]["properties"]
    assert spec2.output_format == "lowercase" and "output_format" in spec2.given


def test_everything_given_makes_no_calls() -> None:
    lm = FakeLM()  # would raise LMCallError on any call
    given = SpecOverrides(
        task_type="qa",
        input_fields="question",
        output_fields="answer",
        output_format="a number",
        sample_data='[{"question": "2+2?", "answer": "4"}]',
        initial_prompt="Answer the question.",
        constraints=["be brief"],
    )
    assert estimate_spec_calls(given) == 0
    spec = infer_task_spec("Answer arithmetic questions", teacher=lm, given=given)
    assert lm.calls == []
    assert spec.initial_prompt == "Answer the question." and spec.constraints == ["be brief"]
    assert spec.sample_rows == [{"question": "2+2?", "answer": "4"}]
    assert spec.assumptions == []


def test_junk_answers_fall_back_to_a_valid_spec() -> None:
    lm = FakeLM(default="lol not json")
    spec = infer_task_spec(DESC, teacher=lm)
    assert len(lm.calls) == 2
    assert spec.task_type == TaskType.CLASSIFICATION
    assert spec.input_names == ["text"] and spec.output_names == ["label"]
    assert spec.labels == ["positive", "negative"]
    assert "Answer with exactly one of: positive, negative." in spec.initial_prompt
    text = " | ".join(spec.assumptions)
    assert "not a JSON object" in text and "keyword rules" in text and "labels read from the description" in text


def test_partly_junk_answer_keeps_good_parts() -> None:
    answer = {"task_type": "not-a-type", "input_fields": 42, "output_fields": [{"name": "Answer Text"}]}
    lm = FakeLM(responses=[json.dumps(answer), '```json\n{"initial_prompt": 7}\n```'])
    spec = infer_task_spec("How many apples are left? Solve math word problems.", teacher=lm)
    assert spec.task_type == TaskType.REASONING  # keyword fallback
    assert spec.input_names == ["question"]  # default
    assert spec.output_names == ["answer_text"]  # teacher's, made an identifier
    assert spec.initial_prompt.startswith("How many apples")


def test_lm_error_falls_back_but_budget_propagates() -> None:
    def fail(_messages: list) -> str:
        raise LMCallError("provider down")

    spec = infer_task_spec("Summarize news articles", teacher=FakeLM(default=fail))
    assert spec.task_type == TaskType.SUMMARIZATION and spec.output_names == ["summary"]
    assert any("failed (provider down)" in a for a in spec.assumptions)

    def broke(_messages: list) -> str:
        raise BudgetExceeded("calls spent", limit="calls")

    with pytest.raises(BudgetExceeded):
        infer_task_spec("Summarize news articles", teacher=FakeLM(default=broke))


def test_no_teacher_uses_rules() -> None:
    spec = infer_task_spec("Translate English sentences to French", teacher=None)
    assert spec.task_type == TaskType.TRANSLATION and spec.output_names == ["translation"]


def test_fields_and_labels_from_user_rows_without_the_model() -> None:
    rows = [{"review": f"r{i}", "sentiment": "pos" if i % 3 else "neg"} for i in range(12)]
    answers = [{"task_type": "classification", "output_format": None}, {"initial_prompt": "Label the review."}]
    lm = FakeLM(responses=[json.dumps(a) for a in answers])
    spec = infer_task_spec("Label reviews", teacher=lm, rows=rows)
    # Fields, labels and sample rows came from the data: never asked for.
    assert set(lm.calls[0]["json_schema"]["properties"]) == {"task_type", "output_format"}
    assert len(lm.calls) == 1  # the initial prompt is never the teacher's: it is the user's words
    assert spec.initial_prompt.startswith("Label reviews.")
    assert "Answer with exactly one of: pos, neg" in spec.initial_prompt
    assert spec.input_names == ["review"] and spec.output_names == ["sentiment"]
    assert spec.labels == ["pos", "neg"]
    assert len(spec.sample_rows) == 3


def test_a_label_set_of_one_is_an_error_naming_the_fix() -> None:
    rows = [{"review": f"r{i}", "sentiment": "positive"} for i in range(12)]
    with pytest.raises(DataError, match="every row of the data has the same sentiment") as e:
        infer_task_spec(DESC, teacher=None, rows=rows)
    assert "--labels" in e.value.hint
    with pytest.raises(ConfigurationError, match="the label set has one label"):
        infer_task_spec(DESC, teacher=None, given=SpecOverrides(task_type="classification", labels="positive"))
    few = infer_task_spec(DESC, teacher=None, rows=rows[:3])  # examples, not a data set: labels from elsewhere
    assert few.labels == ["positive", "negative"] and any("show one label" in n for n in few.assumptions)
    one = FakeLM(responses=[json.dumps({**SPEC_ANSWER, "labels": ["positive"]}), json.dumps(ROWS_ANSWER)])
    assert infer_task_spec("Classify movie reviews", teacher=one).labels != ["positive"]  # the teacher's one: none


def test_nan_labels_are_missing_values_not_a_class() -> None:
    rows = [{"review": f"r{i}", "sentiment": ["pos", "neg", float("nan"), "NaN"][i % 4]} for i in range(12)]
    spec = infer_task_spec("Label reviews", teacher=None, given=SpecOverrides(task_type="classification"), rows=rows)
    assert spec.labels == ["pos", "neg"]


def test_given_labels_and_unknown_task_type() -> None:
    spec = infer_task_spec(
        "Route tickets", teacher=None, given=SpecOverrides(task_type="classification", labels="billing,tech")
    )
    assert spec.labels == ["billing", "tech"] and "labels" in spec.given
    with pytest.raises(ConfigurationError, match="unknown task type"):
        infer_task_spec("x", teacher=None, given=SpecOverrides(task_type="astrology"))
    with pytest.raises(ConfigurationError, match="sample_data"):
        infer_task_spec("x", teacher=None, given=SpecOverrides(sample_data="{not json"))


def test_upstream_kwargs() -> None:
    g = SpecOverrides.from_kwargs(
        {"task_type": "math", "input_fields": ["question"], "model_name": "gpt-4o", "output_fields": None}
    )
    assert g.task_type == "math" and g.output_fields is None
    spec = infer_task_spec("Solve it", teacher=None, given=g)
    assert spec.task_type == TaskType.REASONING


@pytest.mark.parametrize(
    ("desc", "labels"),
    [
        ("Classify the sentiment of a movie review as positive or negative", ["positive", "negative"]),
        ("Classify emails from customers into billing, tech, or other.", ["billing", "tech", "other"]),
        ("Is the claim supported? (yes/no)", ["yes", "no"]),
        ("Write a poem about the sea", None),
    ],
)
def test_label_extraction(desc: str, labels: list[str] | None) -> None:
    assert extract_labels(desc) == labels


def test_task_type_keywords() -> None:
    assert guess_task_type("Extract the names of people") == TaskType.INFORMATION_EXTRACTION
    assert guess_task_type("Answer questions about a passage") == TaskType.QA
    assert guess_task_type("Write a haiku") == TaskType.GENERATION


def test_field_spec_helpers() -> None:
    f = FieldSpec(name="label", labels=["Positive", "negative", "positive"])
    assert f.labels == ["Positive", "negative"]
    assert f.canonical_label(" positive. ") == "Positive" and f.canonical_label("meh") is None
    assert FieldSpec(name="n", type="int").coerce("42") == 42
    with pytest.raises(ValueError):
        FieldSpec(name="n", type="int").coerce("4.5x")


def test_estimate_spec_calls() -> None:
    assert estimate_spec_calls() == 2
    full = SpecOverrides(task_type="classification", input_fields="t", output_fields="l", output_format="x")
    assert estimate_spec_calls(full) == 2  # labels unknown, sample rows and prompt missing
    assert estimate_spec_calls(full, rows=[{"t": "a", "l": "b"}]) == 0  # everything known; prompt built locally


@pytest.mark.parametrize("word", ["classification", "json", "enumeration", "response"])
def test_a_one_word_output_format_from_the_teacher_stays_out_of_the_prompt(word) -> None:
    # What the 135M teacher answered on every suite task: "Output format: classification" became a line of the
    # initial prompt, and the meta guards then rejected any rewrite that dropped that word.
    lm = FakeLM(responses=[json.dumps({"output_format": word}), json.dumps(ROWS_ANSWER)])
    given = SpecOverrides(task_type="classification", input_fields=["review"], output_fields=["sentiment"])
    spec = infer_task_spec(DESC, teacher=lm, given=given)
    assert spec.output_format is None
    assert "Output format" not in spec.initial_prompt
    assert any("output_format from the teacher ignored" in a and word in a for a in spec.assumptions)
