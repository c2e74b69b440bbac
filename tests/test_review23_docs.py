"""Review 23: `feedback add` says what it does (F14, F19), and the docs name what the CLI has (F11, F12, F16-F18).

CLI runs use the scripted fake models of tests/ui_support.py through PROMPTOMATIX_FAKE_LM; no real model loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app
from promptomatix.sessions import SessionStore
from tests.cli_run import run_main
from tests.ui_support import GENERATED, SCRIPT, TASK, make_session, rows

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
runner = CliRunner()


@pytest.fixture
def store(tmp_path, monkeypatch) -> SessionStore:
    script = tmp_path / "fake_lm.json"
    script.write_text(json.dumps(SCRIPT))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(script))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    return SessionStore(tmp_path / "sessions")




# -- F14: `feedback add --text` without --comment, and a quote the prompt does not have ---------------------------


def test_text_without_comment_is_refused_naming_comment(store, capsys):
    sid = make_session(store)
    code, out, err = run_main(capsys, "feedback", "add", sid, "--text", "Say negative")
    assert code == 2 and not out
    assert "--comment" in err and len(err.strip().splitlines()) == 1
    assert store.load(sid).feedback == []  # the quoted words were once stored as the comment


def test_a_quote_not_in_the_prompt_is_a_usage_error_naming_the_fix(store, capsys):
    sid = make_session(store)
    code, _, err = run_main(capsys, "feedback", "add", sid, "--text", "exact words of the prompt", "-c", "too vague")
    line = err.strip()
    assert code == 2 and len(line.splitlines()) == 1
    assert "does not occur in version 1's prompt" in line
    assert f"promptomatix sessions export {sid}" in line and "leave out --text" in line
    code, _, err = run_main(capsys, "feedback", "add", sid, "--start", "5", "--end", "99999", "-c", "x")
    assert code == 2 and "is not inside" in err and "leave out --start/--end" in err
    assert store.load(sid).feedback == []


def test_a_quote_that_occurs_is_still_added(store):
    sid = make_session(store)
    assert "complains or criticizes" in store.load(sid).latest_version().prompt
    r = runner.invoke(app, ["feedback", "add", sid, "--text", "complains or criticizes", "-c", "Be explicit."])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("added fb1 on") and f"apply it with `promptomatix refine {sid}`" in r.stdout


# -- F19: feedback on a session with no version names the command that works next ---------------------------------


def test_feedback_on_a_session_without_a_version_names_resume_and_the_advice_works(store, tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()))
    r = runner.invoke(app, ["optimize", TASK, "--data", str(data), "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    sid = json.loads(r.stdout)["session_id"]
    assert store.load(sid).latest_version() is None

    r = runner.invoke(app, ["feedback", "add", sid, "-c", GENERATED])  # the fake teacher rewrites on this one
    assert r.exit_code == 0, r.output
    assert f"promptomatix resume {sid}" in r.stdout  # refine alone refuses: "has no version to refine"
    assert r.stdout.index("resume") < r.stdout.index("refine")

    assert runner.invoke(app, ["resume", sid, "--json"]).exit_code == 0
    assert runner.invoke(app, ["refine", sid, "--json"]).exit_code == 0
    assert store.load(sid).get_feedback("fb1").status == "applied"


# -- the docs ------------------------------------------------------------------------------------------------------


def test_readme_names_the_commands_and_environment_the_cli_has():
    for name in ("feedback list", "feedback dismiss", "models list", "PROMPTOMATIX_API_KEY", "PROMPTOMATIX_VERBOSE",
                 "PROMPTOMATIX_THREADS", "PROMPTOMATIX_LLAMA_VERBOSE"):  # fmt: skip
        assert name in README, name


def test_every_optimize_flag_the_readme_names_exists():
    r = runner.invoke(app, ["optimize", "--help"], env={"COLUMNS": "300"})
    helped = set(re.findall(r"--[a-z][a-z-]+", r.stdout))
    named = set(re.findall(r"`(--[a-z][a-z-]+)(?![a-z_])", README))  # upstream's `--raw_input` spellings aside
    other = {"--format", "--version", "--pareto", "--candidates", "--diff", "--lambda", "--comment", "--text",
             "--status", "--executor", "--ray-address", "--ray-cpus", "--eval-actors", "--actor-concurrency",
             "--retries", "--experiment", "--allow-remote", "--yes", "--start", "--end", "--job-cpus"}  # fmt: skip
    assert named - helped - other == set()


def test_readme_python_names_say_where_they_live():
    assert "from promptomatix.sessions import SessionStore" in README
    assert "promptomatix.backends.dspy_modules" in README


def test_readme_says_dspy_export_needs_a_dspy_session():
    line = next(x for x in README.splitlines() if "--format text|json|dspy" in x)
    assert "--backend dspy" in line


def test_readme_budget_refusal_says_what_is_spent_first():
    assert "refused before anything is spent" not in README


def test_plugin_readme_states_the_strict_final_metric_and_the_clean_command():
    text = (ROOT / "examples" / "plugin_example" / "README.md").read_text()
    assert "also accepts" not in text and "strict_yes_no" in text
    assert '--output-format "yes or no" --synthetic-data-size 0' in text


def test_examples_name_the_teacher_default_teacher_picks():
    from promptomatix.lm.teacher import STRONGER_LOCAL_TEACHER

    for path in ("examples/README.md", "examples/quickstart.py"):
        text = (ROOT / path).read_text()
        assert f"local/{STRONGER_LOCAL_TEACHER}" in text, path
    assert "here: the same local model" not in (ROOT / "examples" / "quickstart.py").read_text()
