"""Review 24 (upstream migrants, Python API): `session_id` names the new session (F2); upstream's result keys keep
upstream's meaning and shape (F4); Ctrl-C in `process_input` is a KeyboardInterrupt (F6); `list_sessions()` rows
read like upstream's dicts, `save_feedback` refuses impossible spans, and errors give Python callers Python advice
(F10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import promptomatix
from promptomatix import errors
from promptomatix.errors import ConfigurationError, RunInterrupted, SessionError
from promptomatix.result import RunMetrics
from tests.test_pipeline import GIVEN, GOOD_PROMPT, TASK, fakes, run
from tests.test_run_stages import DSPY, dspy_fakes


def _sessions(tmp_path: Path) -> str:
    return str(tmp_path / "s")


# -- F2: process_input(session_id=...) ---------------------------------------------------------------------------


def test_session_id_names_the_new_session_as_upstream_did(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run(tmp_path, session_id="exp-1")
    assert (r.session_id, r["session_id"], r.version) == ("exp-1", "exp-1", 1)
    s = promptomatix.load_session("exp-1", sessions_dir=_sessions(tmp_path))
    assert s.status == "completed" and s.raw_input == TASK and len(s.versions) == 1
    assert not (tmp_path / "sessions").exists()  # the sessions_dir passed, never ./sessions


def test_a_dry_run_with_a_session_id_names_its_session_too(tmp_path):
    d = run(tmp_path, dry_run=True, session_id="dry-1")
    assert d.session_id == "dry-1"
    assert promptomatix.resume("dry-1", clients=fakes()[0], sessions_dir=_sessions(tmp_path)).version == 1


def test_session_id_of_an_existing_session_is_refused_without_touching_it(tmp_path):
    r = run(tmp_path)
    with pytest.raises(SessionError) as e:
        run(tmp_path, session_id=r.session_id, raw_input="Classify spam")
    assert "already exists" in str(e.value) and f"optimize_with_feedback({r.session_id!r})" in str(e.value)
    assert "\n" not in str(e.value)
    s = promptomatix.load_session(r.session_id, sessions_dir=_sessions(tmp_path))
    assert len(s.versions) == 1 and s.status == "completed"


@pytest.mark.parametrize("bad", ["../escape", "a/b", "/etc", "..", ".hidden", "x" * 65, "con", "", 7])
def test_session_id_that_could_name_a_path_is_refused_before_anything_is_written(tmp_path, bad):
    with pytest.raises(SessionError, match="invalid session_id"):
        run(tmp_path, session_id=bad)
    assert not (tmp_path / "escape").exists()
    made = list((tmp_path / "s").iterdir()) if (tmp_path / "s").exists() else []
    assert made == []


@pytest.mark.parametrize(
    "kw", [{"raw_input": "Classify spam"}, {"train_data": GIVEN["train_data"]}, {"synthetic_data_size": 5},
           {"data": "rows.csv"}, {"human_input": "x"}],
)  # fmt: skip
def test_optimize_with_feedback_refuses_spec_and_data_kwargs_it_would_ignore(tmp_path, kw):
    r = run(tmp_path)
    with pytest.raises(ConfigurationError, match=r"reuses session .* task and data") as e:
        promptomatix.optimize_with_feedback(r.session_id, clients=fakes()[0], sessions_dir=_sessions(tmp_path), **kw)
    assert next(iter(kw)) in str(e.value) and "process_input" in str(e.value)


# -- F4: upstream's result keys ----------------------------------------------------------------------------------


def test_synthetic_data_is_upstreams_list_of_rows_train_then_valid(tmp_path):
    r = run(tmp_path)
    rows = r["synthetic_data"]
    assert isinstance(rows, list) and rows == GIVEN["train_data"] + GIVEN["valid_data"]
    assert [example.get("label") for example in rows][:2] == ["positive", "negative"]  # upstream's notebook loop
    assert r.synthetic_data == rows and r.data_splits["train"] == GIVEN["train_data"]


def test_prompt_scores_are_raw_as_upstreams_and_the_penalized_ones_are_named_so(tmp_path):
    r = run(tmp_path)
    m = r["metrics"]
    assert (m["initial_prompt_score"], m["optimized_prompt_score"]) == (0.5, 1.0)  # no length penalty
    assert m["initial_prompt_score_penalized"] < 0.5 and m["optimized_prompt_score_penalized"] < 1.0
    assert r.metrics.optimized_prompt_score == 1.0 and r.metrics.optimized_prompt_score_raw == 1.0  # 0.2's name
    assert r.valid_score == 1.0
    dumped = r.to_json_dict()["metrics"]  # --json: both, and 0.2's *_raw names
    assert (dumped["optimized_prompt_score"], dumped["optimized_prompt_score_raw"]) == (1.0, 1.0)
    assert dumped["optimized_prompt_score_penalized"] == m["optimized_prompt_score_penalized"]


def test_result_key_is_prompt_text_not_a_transcript(tmp_path):
    r = run(tmp_path)
    text = r["result"]
    assert text.startswith(GOOD_PROMPT) and "[system]" not in text and "[user]" not in text
    assert "{review}" not in text
    assert r.best_prompt.startswith("[system]")  # the transcript the model reads is still there, under its name


def test_result_key_of_the_dspy_backend_is_its_instructions_and_demos_as_text(tmp_path):
    r = run(tmp_path, clients=dspy_fakes()[0], **DSPY)
    text = r["result"]
    assert text.startswith(r.instructions.strip()) and "[system]" not in text and "Your input fields are" not in text
    assert text.count("Example ") == len(r.demos)


def test_prompt_text_shows_demos_as_worked_examples():
    from promptomatix.run_report import prompt_text
    from promptomatix.task.models import FieldSpec, TaskSpec

    spec = TaskSpec(task_type="classification", description="t", input_fields=[FieldSpec(name="review")],
                    output_fields=[FieldSpec(name="label")])  # fmt: skip
    text = prompt_text(spec, "Classify.", "Answer with one label.", [{"review": "bad", "label": "negative"}])
    assert text == 'Classify.\n\nAnswer with one label.\n\nExample 1:\nreview: bad\nAnswer: {"label": "negative"}'


def test_dict_of_the_result_is_a_plain_json_serializable_dict(tmp_path):
    r = run(tmp_path)
    d = dict(r)
    d["note"] = "annotated"  # a plain dict: callers can annotate and save it
    back = json.loads(json.dumps(d))
    assert back["result"] == r["result"] and back["metrics"]["optimized_prompt_score"] == 1.0
    assert json.loads(json.dumps(r.model_dump(mode="json")))["session_id"] == r.session_id


def test_report_table_rows_still_show_penalized_and_raw_under_their_labels(capsys):
    from types import SimpleNamespace

    from promptomatix.cli import report

    m = RunMetrics(initial_prompt_score=0.5, optimized_prompt_score=0.75, initial_prompt_score_penalized=0.41,
                   optimized_prompt_score_penalized=0.62)  # fmt: skip
    r = SimpleNamespace(metrics=m, best_prompt="p2", initial_prompt="p1", session_id="s", version=1, no_change=False,
                        kept_version=None, notes=[], data_report={}, backend="b", task_type="t", rounds_completed=1,
                        n_candidates=2, stop_reason="completed", assumptions=[], verdict=None, improved=False)  # fmt: skip
    report.result_report(r)
    out = capsys.readouterr().out
    penalized = next(line for line in out.splitlines() if "valid (penalized)" in line)
    raw = next(line for line in out.splitlines() if "valid (raw)" in line)
    assert "0.41" in penalized and "0.62" in penalized and "0.5" in raw and "0.75" in raw


# -- F6: Ctrl-C ------------------------------------------------------------------------------------------------


def test_ctrl_c_in_process_input_is_not_swallowed_by_except_exception(tmp_path):
    clients, _, _ = fakes(task_interrupt=30)
    with pytest.raises(KeyboardInterrupt) as e:
        try:
            run(tmp_path, clients=clients)
        except Exception:  # a caller's loop of runs: must not see Ctrl-C here
            pytest.fail("Ctrl-C was caught by `except Exception`")
    err = e.value
    assert isinstance(err, RunInterrupted) and isinstance(err, errors.KeyboardRunInterrupted) and err.exit_code == 130
    assert f"promptomatix.resume({err.session_id!r})" in str(err) and "promptomatix resume " not in str(err)
    out = promptomatix.resume(err.session_id, clients=fakes()[0], sessions_dir=_sessions(tmp_path))
    assert out.session_id == err.session_id and out.version == 2


def test_ctrl_c_in_resume_is_a_keyboard_interrupt_too(tmp_path):
    with pytest.raises(RunInterrupted) as first:
        run(tmp_path, clients=fakes(task_interrupt=30)[0])
    with pytest.raises(KeyboardInterrupt) as again:
        promptomatix.resume(
            first.value.session_id, clients=fakes(task_interrupt=3)[0], sessions_dir=_sessions(tmp_path)
        )
    assert isinstance(again.value, RunInterrupted) and again.value.session_id == first.value.session_id


def test_the_runs_own_interrupt_is_not_an_exception_so_the_cli_can_show_its_line():
    """Click turns any KeyboardInterrupt into a bare exit 130: the CLI's run raises the base class, the API the
    KeyboardInterrupt subclass (tests/test_interrupts.py checks the CLI's line names `promptomatix resume ID`)."""
    e = RunInterrupted("interrupted", session_id="abc", hint="resume with `promptomatix resume abc`")
    assert not isinstance(e, Exception) and not isinstance(e, KeyboardInterrupt)
    assert isinstance(e.for_python(), KeyboardInterrupt)


# -- F10 ---------------------------------------------------------------------------------------------------------


def test_list_sessions_rows_read_like_upstreams_dicts(tmp_path):
    r = run(tmp_path)
    (s,) = promptomatix.list_sessions(sessions_dir=_sessions(tmp_path))
    assert s["session_id"] == s.session_id == r.session_id and s["status"] == "completed"
    assert s["initial_input"] == TASK and s["latest_optimized_prompt"] == r["result"]
    assert isinstance(s["created_at"], str) and json.loads(json.dumps(dict(s)))["n_versions"] == 1


@pytest.mark.parametrize(
    ("text", "start", "end", "match"),
    [
        ("complains", 40, 9, "cannot hold"),  # end < start
        ("complains", -5, 4, "cannot hold"),  # negative
        ("x", 5000, 5001, "past the end"),  # beyond the prompt
        ("complains", "9", "18", "must be integers"),
        ("complains", 9.0, 18.0, "must be integers"),
        (None, 0, 5, "quoted part"),
        ("", 0, 5, "quoted part"),
        ("nonexistent words here", 0, 22, "does not occur"),
    ],
)
def test_save_feedback_refuses_spans_no_prompt_could_have(tmp_path, text, start, end, match):
    r = run(tmp_path)
    with pytest.raises(ConfigurationError, match=match):
        promptomatix.save_feedback(text, start, end, "too vague", r.session_id, sessions_dir=_sessions(tmp_path))
    assert promptomatix.load_session(r.session_id, sessions_dir=_sessions(tmp_path)).feedback == []


def test_save_feedback_takes_quotes_of_the_result_text_and_of_the_whole_prompt(tmp_path):
    r = run(tmp_path)
    d = _sessions(tmp_path)
    text = r["result"]
    start = text.index("complains")
    one = promptomatix.save_feedback("complains", start, start + 9, "be precise", r.session_id, sessions_dir=d)
    whole = promptomatix.save_feedback(text, 0, len(text), "shorter", r.session_id, sessions_dir=d)
    general = promptomatix.save_feedback("", 0, 0, "say more", r.session_id, sessions_dir=d)  # 0.2's general form
    items = promptomatix.load_session(r.session_id, sessions_dir=d).feedback
    assert [i.id for i in items] == [one["id"], whole["id"], general["id"]] and items[0].text == "complains"
    assert items[2].kind == "general"


def test_errors_give_python_callers_python_advice(tmp_path):
    with pytest.raises(ConfigurationError, match="no search fits the budget") as e:
        run(tmp_path, max_calls=3)
    assert "max_calls=" in e.value.hint and "--max-calls" not in str(e.value)
    assert errors.for_python("check that --api-base points at it; pass --api-key") == (
        "check that model_api_base points at it; pass model_api_key"
    )
    assert (
        errors.for_python("resume with `promptomatix resume 2026-x`") == "resume with `promptomatix.resume('2026-x')`"
    )
    assert errors.for_python("see `promptomatix sessions list`") == "see `promptomatix.list_sessions()`"
    quoted = "run `promptomatix models pull m --force`"  # a CLI command with no Python twin is left whole
    assert errors.for_python(quoted) == quoted


# -- review 26: F6, F10, N1, N3 ----------------------------------------------------------------------------------


def test_a_named_session_that_never_made_a_version_can_be_run_again_under_its_name(tmp_path):
    """A typo in a path (or a dry run first) claimed the id for good: the fixed call was refused, and every hint
    (optimize_with_feedback, resume) led to another refusal."""
    from promptomatix.errors import DataUsageError

    with pytest.raises(DataUsageError):
        run(tmp_path, session_id="exp-42", data=str(tmp_path / "typo.csv"))
    r = run(tmp_path, session_id="exp-42")
    assert (r.session_id, r.version) == ("exp-42", 1)
    d = run(tmp_path, dry_run=True, session_id="exp-43")
    assert run(tmp_path, session_id=d.session_id).version == 1
    with pytest.raises(SessionError, match="already exists with 1 version"):  # a version: never replaced
        run(tmp_path, session_id="exp-42")


def test_a_ctrl_c_raised_in_a_worker_process_keeps_its_session_id():
    """Unpicklable, it broke a process pool (BrokenProcessPool) and the id to resume was lost."""
    import pickle

    e = RunInterrupted("interrupted", session_id="s-1", hint="resume it").for_python()
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is type(e) and isinstance(back, KeyboardInterrupt)
    assert (back.session_id, back.message, back.hint) == ("s-1", "interrupted", e.hint)


def test_an_explicit_none_raw_input_derives_the_task_from_the_data_like_a_missing_one(tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("review,label\n" + "".join(f"{r['review']},{r['label']}\n" for r in GIVEN["train_data"] * 3))
    d = promptomatix.process_input(raw_input=None, data=str(csv), dry_run=True, clients=fakes()[0],
                                   sessions_dir=_sessions(tmp_path))  # fmt: skip
    assert d.session_id


def test_save_feedback_takes_numpy_style_integer_offsets(tmp_path):
    class Int64:  # what a DataFrame hands over: an integer that is not an int
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    r = run(tmp_path)
    start = r["result"].index("complains")
    saved = promptomatix.save_feedback("complains", Int64(start), Int64(start + 9), "be precise", r.session_id,
                                       sessions_dir=_sessions(tmp_path))  # fmt: skip
    assert saved["id"]
