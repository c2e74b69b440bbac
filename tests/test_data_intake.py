"""The data intake is the builder's, in the run and in the dry run (one validation, one set of words); a source is
"the same as the test file" only when its rows all repeat the test; a --labels mismatch is a wrong command line;
field names the teacher proposed are not the user's fault; only the rows the teacher saw are kept from the test."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from promptomatix.api import process_input
from promptomatix.cli.fakes import clients_from_script
from promptomatix.data import build_data
from promptomatix.errors import DataError, UsageError
from promptomatix.task import infer_task_spec

TASK = "Classify the sentiment of a movie review"


def _csv(path: Path, rows: list[tuple[str, str]], output: str = "label") -> str:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", output])
        w.writerows(rows)
    return str(path)


def _reviews(n: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film number {i}",
             "positive" if i % 2 == 0 else "negative") for i in range(start, start + n)]  # fmt: skip


def _run(tmp_path: Path, dry: bool, teacher: Any = None, **kw: Any) -> Any:
    clients = clients_from_script({"task": {"default": {"label": "positive"}}, "teacher": {"default": teacher or {}}})
    return process_input(raw_input=TASK, dry_run=dry, sessions_dir=str(tmp_path / f"s{dry}"), clients=clients, **kw)


def _dry_and_run_error(tmp_path: Path, **kw: Any) -> list[DataError]:
    errors = []
    for dry in (True, False):
        with pytest.raises(DataError) as e:
            _run(tmp_path, dry, **kw)
        errors.append(e.value)
    return errors


def test_dry_run_uses_the_builders_intake() -> None:
    """The dry run's copy of the intake (data_plan.usable_rows / refuse_unusable) is gone: one validation."""
    import promptomatix.run.data_plan as plan
    from promptomatix.data.builder import validate_sources

    assert not hasattr(plan, "usable_rows") and not hasattr(plan, "refuse_unusable")
    rows = [dict(review=r, label=lab) for r, lab in _reviews(6)]
    spec = infer_task_spec(TASK, teacher=None, rows=rows)
    src = validate_sources(spec, user_rows=rows, test_rows=rows[:2])
    assert len(src.test) == 2 and len(src.user) == 4
    assert any("same input as a held-out test row (" in n for n in src.report.notes), src.report.notes
    with pytest.raises(DataError, match="also a held-out test row"):
        validate_sources(spec, train_rows=rows[:2], test_rows=rows)


def test_rows_failing_for_another_reason_are_not_called_a_copy_of_the_test(tmp_path: Path) -> None:
    """30 rows with a label outside the label set and 1 repeat of a test row: the labels are the news."""
    test = _csv(tmp_path / "test.csv", _reviews(20, start=100))
    data = _csv(tmp_path / "r.csv", [(f"a plain film {i}", "neutral") for i in range(30)] + _reviews(1, start=100))
    for err in _dry_and_run_error(tmp_path, data=data, local_test_data_path=test, labels=["positive", "negative"]):
        assert "also a held-out test row" not in err.message, err.message
        assert "no usable data rows" in err.message and "label not in label set" in err.message
        assert "pass labels with" in (err.hint or "")  # the Python API names the kwarg
        assert err.exit_code == 1  # not every skip is the label set's: the data is at fault too


def test_the_same_file_as_data_and_test_is_named_so_in_the_dry_run_too(tmp_path: Path) -> None:
    data = _csv(tmp_path / "r.csv", _reviews(40))
    for err in _dry_and_run_error(tmp_path, data=data, local_test_data_path=data):
        assert "every usable row of r.csv is also a held-out test row" in err.message, err.message


def test_labels_matching_no_row_are_a_wrong_command_line(tmp_path: Path) -> None:
    """Found by the data stage: the output column ('mood') is not named like one, so the early check cannot tell."""
    data = _csv(tmp_path / "r.csv", _reviews(20), output="mood")
    for err in _dry_and_run_error(tmp_path, data=data, labels=["pos", "neg"]):
        assert isinstance(err, UsageError) and err.exit_code == 2, (type(err), err)
        assert "no usable data rows" in err.message and "pass labels with" in (err.hint or "")


def test_field_names_the_teacher_proposed_are_not_a_usage_error(tmp_path: Path) -> None:
    teacher = {"task_type": "qa", "input_fields": [{"name": "self", "type": "str", "description": "the question"}],
               "output_fields": [{"name": "answer", "type": "str", "description": "the answer"}]}  # fmt: skip
    clients = clients_from_script({"task": {"default": {"answer": "x"}}, "teacher": {"default": teacher}})
    with pytest.raises(DataError) as e:
        process_input(raw_input="Answer the question", dry_run=True, backend="dspy", sessions_dir=str(tmp_path / "s"),
                      clients=clients)  # fmt: skip
    err = e.value
    assert "'self'" in err.message and not isinstance(err, UsageError) and err.exit_code == 1, (type(err), err)
    assert err.hint == "pass input_fields/output_fields with other names, or backend='meta'"


def test_only_the_rows_the_teacher_is_shown_are_kept_from_the_test() -> None:
    from promptomatix.data.synthetic_checks import shown_rows, teacher_examples

    rows = [dict(review=r, label=lab) for r, lab in _reviews(30)]
    spec = infer_task_spec(TASK, teacher=None, rows=rows)
    spec = spec.model_copy(update={"sample_rows": [dict(r) for r in rows[:3]]})
    assert teacher_examples(spec) == rows[:2]  # the synthetic prompt shows two
    assert shown_rows(spec, rows) == {id(rows[0]), id(rows[1])}
    from promptomatix.data.synthetic import _Plan
    from promptomatix.data.synthetic_prompts import batch_prompt

    prompt = batch_prompt(spec, _Plan(0, 5, [], "hint"))  # the prompt shows exactly the rows kept out of the test
    assert [r for r in rows[:3] if r["review"] in prompt] == teacher_examples(spec)
    # No synthetic rows: nothing was shown to a teacher, so the sample rows may be test rows like any other.
    splits, report = build_data(spec, teacher=None, user_rows=rows, synthetic_size=0, seed=0, test_size=24)
    assert report.synthetic is None
    test = [r["review"] for r in splits.test_rows()]
    assert {r["review"] for r in rows[:3]} & set(test)
