"""Review 23, wrong command-line values (F3, F10), flags that do not apply (F9), hints naming flags the command
does not have (F5, F6) and `--help` ranges (F13): a wrong value exits 2 with one line naming the fix, before any
session is created and before any model call; a failed session does not advise a `resume` that cannot help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from promptomatix.cli.fakes import clients_from_script
from promptomatix.errors import PromptomatixError, UsageError
from tests.batch_helpers import SCRIPT, write_data
from tests.test_review17_secrets import run as run_main

TASK = "Classify the sentiment of a movie review"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """The CLI with scripted fakes the test holds (to count their calls), and the data beside it."""
    import promptomatix.cli.optimize_cmd as optimize_cmd

    clients = clients_from_script(SCRIPT)
    monkeypatch.setattr(optimize_cmd, "clients_from_env", lambda: clients)
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path)
    (tmp_path / "good_meta.txt").write_text('Improve: $current_prompt Reply JSON {"prompt": "..."}')
    (tmp_path / "bad_meta.txt").write_text("BAD $task")
    return tmp_path, clients


def _sessions(tmp_path: Path) -> list[Path]:
    d = tmp_path / "sessions"
    return [p for p in d.iterdir() if p.is_dir()] if d.exists() else []


def _lines(err: str) -> list[str]:
    return [x for x in err.splitlines() if x.strip()]


WRONG = [
    (["--backend", "dspy", "--dspy-module", "nosuch"], "nosuch"),
    (["--backend", "dspy", "--dspy-optimizer", "nosuch"], "optimizer"),
    (["--meta-prompt", "nosuch.txt"], "nosuch.txt"),
    (["--meta-prompt", "bad_meta.txt"], "$current_prompt"),
    (["--metric", "nosuch_r23_module:fn"], "nosuch_r23_module"),
    (["--metric", "./nosuch.py:fn"], "nosuch.py"),
    (["--data", "hf:"], "hf:"),
    (["--track", "mlflow:ftp://x"], "ftp"),
    (["--max-calls", "0"], "max-calls"),
    (["--max-minutes", "0"], "max-minutes"),
    # F9: flags the backend does not read, a task given twice
    (["--dspy-module", "cot"], "--backend dspy"),
    (["--dspy-optimizer", "gepa"], "--backend dspy"),
    (["--backend", "dspy", "--meta-prompt", "good_meta.txt"], "--meta-prompt"),
    (["--backend", "dspy", "--rounds", "3"], "--rounds"),
    (["--backend", "dspy", "--candidates", "7"], "--candidates"),
    (["--raw_input", "Translate English to French"], "twice"),
]


@pytest.mark.parametrize(("extra", "says"), WRONG, ids=[" ".join(a) for a, _ in WRONG])
def test_a_wrong_value_exits_2_before_any_session_or_call(cli, capsys, extra, says):
    tmp, clients = cli
    code, _out, err = run_main(capsys, "optimize", TASK, "--data", "reviews.csv", "-q", *extra)
    assert code == 2, err
    assert len(_lines(err)) == 1 and says in err, err
    assert _sessions(tmp) == []
    assert all(not c.calls for c in clients.values())


@pytest.fixture
def no_models(cli, monkeypatch):
    """No fake clients: the model strings are checked; nothing may load, pull or call a model."""
    import promptomatix.cli.optimize_cmd as optimize_cmd
    import promptomatix.lm.catalog as catalog
    import promptomatix.lm.local as local

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded or pulled")

    monkeypatch.setattr(optimize_cmd, "clients_from_env", lambda: None)
    monkeypatch.setattr(local, "LocalClient", refuse)
    monkeypatch.setattr(catalog, "pull", refuse)
    return cli[0]


@pytest.mark.parametrize(("model", "says"), [
    ("local/nosuch", "unknown local model 'nosuch'"),
    ("local:/nonexistent/x.gguf", "GGUF file not found"),
    ("nosuch/model-x", "nosuch/model-x"),
])  # fmt: skip
def test_a_wrong_model_exits_2_before_anything_loads(no_models, capsys, model, says):
    code, _out, err = run_main(capsys, "optimize", TASK, "--data", "reviews.csv", "-q", "--model", model)
    assert code == 2, err
    assert len(_lines(err)) == 1 and says in err, err
    assert _sessions(no_models) == []


def test_right_values_still_run(cli, capsys):
    """The checks refuse only wrong values: a dspy dry run with its flags, and a good meta-prompt file."""
    for extra in (["--backend", "dspy", "--dspy-module", "cot", "--dspy-optimizer", "bootstrap"],
                  ["--meta-prompt", "good_meta.txt", "--rounds", "1"], ["--raw_input", TASK]):  # fmt: skip
        code, _out, err = run_main(capsys, "optimize", TASK, "--data", "reviews.csv", "--dry-run", "-q", *extra)
        assert code == 0, (extra, err)


def test_library_runs_refuse_a_typo_before_a_session(tmp_path):
    """process_input too: a dspy module or meta-prompt typo left a `failed` session after the spec call."""
    from promptomatix.api import process_input

    data = str(write_data(tmp_path))
    for kw in ({"backend": "dspy", "dspy_module": "nosuch"}, {"meta_prompts": [str(tmp_path / "nosuch.txt")]}):
        clients, sd = clients_from_script(SCRIPT), tmp_path / f"s{len(kw)}"
        with pytest.raises(UsageError):
            process_input(raw_input=TASK, data=data, sessions_dir=str(sd), clients=clients, **kw)
        assert not sd.exists() or not any(sd.iterdir())
        assert all(not c.calls for c in clients.values())


# -- refine and resume ---------------------------------------------------------------------------------------


@pytest.fixture
def sid(cli, capsys):
    code, out, err = run_main(capsys, "optimize", TASK, "--data", "reviews.csv", "--json", "-q")
    assert code == 0, err
    return json.loads(out)["session_id"]


@pytest.mark.parametrize("extra", [["--backend", "nosuch"], ["--search-type", "huge"]])
def test_refine_wrong_values_exit_2(sid, capsys, extra):
    code, _out, err = run_main(capsys, "refine", sid, "-q", *extra)
    assert code == 2, err
    assert len(_lines(err)) == 1


def _options_of(command: str) -> set[str]:
    import typer.main

    from promptomatix.cli.app import app

    group = typer.main.get_command(app)
    cmd = group.get_command(None, command)  # type: ignore[attr-defined]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize("command", ["refine", "resume"])
def test_budget_refusal_names_only_the_commands_flags(sid, capsys, command):
    """F6: "no search fits the budget" advised --valid-data-size/--test-data-size, which refine and resume reject."""
    from promptomatix.backends.plan import PLAN_COMMAND, search_does_not_fit

    token = PLAN_COMMAND.set(command)
    try:
        hint = search_does_not_fit("no rounds", 5, 74).hint or ""
    finally:
        PLAN_COMMAND.reset(token)
    flags = set(re.findall(r"--[a-z][a-z-]*", hint))
    assert flags and flags <= _options_of(command), hint
    if command == "refine":
        code, _out, err = run_main(capsys, "refine", sid, "--max-calls", "5", "-q")
        assert code == 1 and "no search fits the budget" in err, err
        assert set(re.findall(r"--[a-z][a-z-]*", err)) <= _options_of("refine"), err


def test_optimize_budget_hint_keeps_the_row_flags():
    from promptomatix.backends.plan import search_does_not_fit

    hint = search_does_not_fit("no rounds", 5, 74).hint or ""
    assert "--max-calls 79" in hint and "--valid-data-size" in hint


# -- F5, F13 -------------------------------------------------------------------------------------------------


def test_dspy_failure_hint_names_the_real_flag():
    from promptomatix.backends.dspy_optimizers import optimizer_failed

    hint = optimizer_failed("MIPROv2", RuntimeError("gave up"), None).hint or ""
    flags = set(re.findall(r"--[a-z][a-z-]*", hint))
    assert "--dspy-optimizer" in flags and flags <= _options_of("optimize"), hint


def test_help_ranges_match_what_is_accepted():
    from typer.testing import CliRunner

    from promptomatix.cli.app import app

    r = CliRunner().invoke(app, ["optimize", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    text = " ".join(r.stdout.split())
    assert "[x>=0.0]" not in re.sub(r".*--max-minutes", "", text)[:120], text
    assert "x>0" in re.sub(r".*--max-minutes", "", text)[:120]
    calls = re.sub(r".*--max-calls", "", text)[:120]
    assert "x>=1" in calls and "[x>=0]" not in calls, calls


# -- F3: what a failed session advises -----------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "flag", "resume"), [
    ("unknown DSPy module 'nosuch'; known: cot, pot, predict, react", "--dspy-module", False),
    ("unknown local model 'nosuch' (known models: smollm2-135m)", "--model", False),
    ("unknown model 'nosuch/model-x' (write provider/model)", "--model", False),
    ("meta-prompt file not found: nosuch.txt", "--meta-prompt", True),
    ("the teacher's calls failed: 500", None, True),
])  # fmt: skip
def test_a_failed_session_advises_resume_only_when_it_can_help(store, reason, flag, resume):
    from promptomatix.cli.sessions_view import state_lines

    s = store.new_session(raw_input=TASK, status="failed")
    s.add_event("failed", reason=reason)
    line = state_lines(s, None)[0]
    assert ("promptomatix resume" in line) is resume, line
    if flag:
        assert flag in line and "promptomatix optimize" in line, line
    else:
        assert "fix the cause, then continue it with `promptomatix resume" in line


def test_wrong_value_errors_are_usage_errors():
    """The library's own check raises UsageError (exit 2) for the CLI, a PromptomatixError for callers."""
    from promptomatix.config import RunConfig
    from promptomatix.run.inputs import check_command_line

    cfg = RunConfig(raw_input=TASK, backend="dspy", dspy_module="nosuch")
    with pytest.raises(UsageError) as e:
        check_command_line(cfg, clients_from_script(SCRIPT))
    assert isinstance(e.value, PromptomatixError) and "nosuch" in e.value.message


def test_a_missing_jobs_file_is_a_usage_error(tmp_path, capsys) -> None:
    """Review 23, F10 (left by its fixer): `batch nosuch.yaml` exited 1 like a failed batch."""
    from tests.cli_run import run_main

    code, out, err = run_main(capsys, "batch", str(tmp_path / "nosuch.yaml"))
    assert code == 2 and out == "" and "cannot read the jobs file" in err and "jobs file)" in err, err
