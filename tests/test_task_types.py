"""Open task types: the built-ins are registered definitions (names, aliases, default fields, scoring, keyword
guessing) and behave as the closed enum did; the layout house-keeping (task/ rename with the old import path
kept, production types out of fake.py, typed errors instead of asserts)."""

from __future__ import annotations

import pytest

from promptomatix.errors import ConfigurationError, StateError
from promptomatix.metrics import MetricsManager
from promptomatix.task import TaskSpec, TaskType, get_task_type, guess_task_type, known_task_types
from promptomatix.task.heuristics import default_fields
from promptomatix.task.models import FieldSpec
from promptomatix.task.overrides import parse_task_type

ENUM_ORDER = [
    "classification", "multi_label_classification", "qa", "reasoning", "summarization", "translation",
    "generation", "information_extraction", "paraphrasing", "conversation", "negotiation", "code_generation",
    "code_explanation", "code_completion", "code_debugging", "planning", "tool_use", "decision_making",
    "process_automation", "recommendation", "data_analysis",
]  # fmt: skip


def test_the_builtins_keep_the_enum_names_in_order():
    assert known_task_types() == ENUM_ORDER  # the order the teacher sees them offered in
    assert all(getattr(TaskType, n.upper()) == n for n in ENUM_ORDER)


@pytest.mark.parametrize(
    ("alias", "name"),
    [("math", "reasoning"), ("question-answering", "qa"), ("Multi-Label Classification", "multi_label_classification"),
     ("summary", "summarization"), ("chat", "conversation"), ("text_generation", "generation")],
)  # fmt: skip
def test_aliases_resolve(alias, name):
    assert parse_task_type(alias) == name
    spec = TaskSpec(description="d", task_type=alias, input_fields=[FieldSpec(name="a")],
                    output_fields=[FieldSpec(name="b")])  # fmt: skip
    assert spec.task_type == name


def test_default_fields_and_scoring_come_from_the_definition():
    assert [f.name for f in default_fields("classification")[1]] == ["label"]
    assert [f.name for f in default_fields("qa", "answer from the passage")[0]] == ["context", "question"]
    assert [f.name for f in default_fields("planning")[0]] == ["request"]
    assert get_task_type("translation").scoring == "translation" and get_task_type("planning").scoring == "judge"
    mm = MetricsManager(output_fields=["answer"], lambda_penalty=0)
    assert mm.score("math", {"answer": "42"}, {"answer": "It is 42."}).score == 1.0  # numeric reasoning scorer


def test_keyword_guessing_keeps_the_old_precedence():
    assert guess_task_type("Classify customer questions into billing or tech") == "classification"
    assert guess_task_type("Translate a summary into French") == "translation"
    assert guess_task_type("Select all labels that apply") == "multi_label_classification"
    assert guess_task_type("Write a haiku") == "generation"


def test_label_field_follows_the_definition():
    spec = TaskSpec(description="d", task_type="classification", input_fields=[FieldSpec(name="t")],
                    output_fields=[FieldSpec(name="l")])  # fmt: skip
    assert spec.label_field == "l"
    assert spec.model_copy(update={"task_type": "qa"}).label_field is None


def test_unknown_type_is_an_error_that_lists_the_known():
    with pytest.raises(ConfigurationError, match="unknown task type 'tone'"):
        get_task_type("tone")


def test_the_old_spec_import_path_still_works():
    from promptomatix.spec import TaskSpec as Old
    from promptomatix.spec.models import TaskSpec as OldDeep

    assert Old is TaskSpec and OldDeep is TaskSpec


def test_production_types_live_in_lm_types_and_fake_reexports_them():
    from promptomatix.lm import fake, types

    assert fake.Completion is types.Completion
    from promptomatix.lm.boundary import ModelClient

    assert ModelClient is types.ModelClient


def test_missing_predictors_and_a_verdict_without_its_difference_are_typed_errors():
    from promptomatix.backends.base import BackendResult
    from promptomatix.metrics.verdict import PairedVerdict

    result = BackendResult(backend="mine", prompt="p", instructions="p", valid_raw=1, valid_penalized=1,
                           initial_prompt="p", initial_valid_raw=1, initial_valid_penalized=1)  # fmt: skip
    with pytest.raises(StateError, match="backend mine did not attach predictors") as err:
        result.best_predict  # noqa: B018
    assert "with_predictors" in (err.value.hint or "")
    with pytest.raises(StateError, match="'improved' verdict without its paired difference"):
        PairedVerdict(outcome="improved").summary()
