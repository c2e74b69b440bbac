"""The run commands' contract: `--json` is one JSON document on stdout with every backend (and nothing on stdout
on an error), refine/resume take the budget, timeout and credential flags, malformed `--sample-data` is one line,
the live counter counts every call as it is made, and `process_input`/`feedback generate` show signs of life."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.errors import ConfigurationError
from promptomatix.sessions import SessionStore
from tests.review_rows import write_reviews_csv

CLI = str(Path(sys.executable).parent / "promptomatix")
TASK = "Classify the sentiment of a movie review"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {
        "rules": [
            ['{"feedback"', {"feedback": [{"quote": "", "comment": "Say what to do with sarcasm."}]}],
            ['{"prompt"', {"prompt": "Say negative if the review complains."}],
        ],
        "default": {},
    },
}
runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    script = tmp_path / "fake.json"
    script.write_text(json.dumps(SCRIPT))
    data = write_reviews_csv(tmp_path / "reviews.csv")
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(script))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    return {**os.environ, "DATA": str(data)}


def cli(env, *args, timeout=300):
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_json_with_the_dspy_backend_is_one_document_on_stdout(env):
    r = cli(
        env, "optimize", TASK, "--data", env["DATA"], "--backend", "dspy", "--dspy-optimizer", "bootstrap", "--json"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # DSPy's "Bootstrapped …" lines go to the log, not stdout or stderr
    assert out["backend"].startswith("dspy") and out["version"] == 1
    assert "Bootstrapped" not in r.stderr  # third-party output only with PROMPTOMATIX_VERBOSE=1


def test_dspys_own_prints_stay_out_of_the_report_unless_verbose(env):
    """DSPy print()s "Bootstrapped 3 full traces…" while it compiles; without --json those lines landed between the
    progress lines and the report. They are DEBUG log records now, shown as printed only with PROMPTOMATIX_VERBOSE."""
    args = ["optimize", TASK, "--data", env["DATA"], "--backend", "dspy", "--dspy-optimizer", "bootstrap"]
    r = cli({k: v for k, v in env.items() if k != "PROMPTOMATIX_VERBOSE"}, *args)
    assert r.returncode == 0, r.stderr
    assert "Bootstrapped" not in r.stdout + r.stderr and "optimized" in r.stdout.lower()
    loud = cli({**env, "PROMPTOMATIX_VERBOSE": "1"}, *args)
    assert loud.returncode == 0, loud.stderr
    assert "Bootstrapped" in loud.stdout


def test_an_error_under_json_leaves_stdout_empty_and_names_the_position(env):
    r = cli(env, "optimize", TASK, "--sample-data", '[{"review": "great", label: 1}]', "--json", timeout=60)
    assert r.returncode == 2 and r.stdout == ""  # a wrong command line
    (line,) = [x for x in r.stderr.splitlines() if x.strip()]
    assert "--sample-data is not valid JSON" in line and "line 1 column 22" in line and "JSONDecodeError" not in line


@pytest.fixture
def sid(env):
    r = invoke("optimize", TASK, "--data", env["DATA"], "--json", "--api-base", "http://u:pw@127.0.0.1:9/v1?code=s3")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["session_id"]


def test_refine_needs_the_stripped_credentials_again_and_takes_budget_flags(sid, capsys):
    with pytest.raises(SystemExit) as e:
        main(["refine", sid, "-q"])
    err = capsys.readouterr().err
    assert e.value.code == 1 and "credentials that were not saved" in err and "--api-base" in err
    # the flags reach the run: 12 calls cannot pay for one candidate, so the refine is refused before it spends
    with pytest.raises(ConfigurationError, match=r"no search fits the budget.*--max-calls"):
        invoke(
            "refine", sid, "--api-base", "http://u:pw@127.0.0.1:9/v1?code=s3", "--max-calls", "12", "--max-usd",
            "1", "--max-minutes", "5", "--max-tokens", "64", "--max-total-tokens", "100000", "--request-timeout",
            "5", "--json",
        )  # fmt: skip
    r = invoke("refine", sid, "--api-base", "http://u:pw@127.0.0.1:9/v1?code=s3", "--max-calls", "200",
               "--max-tokens", "64", "--request-timeout", "5", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["calls"] <= 200


def test_resume_takes_budget_and_credential_flags(env, capsys):
    r = invoke("optimize", TASK, "--data", env["DATA"], "--dry-run", "--json")
    sid = json.loads(r.stdout)["session_id"]
    assert SessionStore().load(sid).total_spent().calls > 0  # the dry run's spec questions are the session's cost
    with pytest.raises(ConfigurationError, match="no search fits the budget"):  # the flag reached the run
        invoke("resume", sid, "--api-key", "sk-xyz", "--api-base", "http://127.0.0.1:9/v1", "--max-calls", "30",
               "--request-timeout", "5", "--json")  # fmt: skip
    r = invoke("resume", sid, "--api-key", "sk-xyz", "--api-base", "http://127.0.0.1:9/v1", "--max-calls", "200",
               "--request-timeout", "5", "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["calls"] <= 200
    assert "sk-xyz" not in SessionStore().session_file(sid).read_text()


def test_the_live_counter_counts_every_call_as_it_is_made(env, monkeypatch):
    import promptomatix.run.progress as live_progress
    from promptomatix import process_input
    from promptomatix.cli.fakes import clients_from_env

    monkeypatch.setattr(live_progress, "TICK_S", 0.0)
    events = []
    r = process_input(raw_input=TASK, data=env["DATA"], clients=clients_from_env(), progress=events.append)
    live = [e.calls for e in events if e.live]
    assert live == sorted(live) and max(live) == r.metrics.calls  # the counter reaches the last call made
    assert len(set(live)) >= r.metrics.calls - 4 * 2  # one tick per call (parallel calls may share a snapshot)
    steps = [e.calls for e in events if not e.live]
    assert len(set(live)) > len(set(steps))  # far more counts seen than the step messages alone would show


def test_the_live_counter_is_throttled(env):
    from promptomatix import process_input
    from promptomatix.cli.fakes import clients_from_env

    events = []
    r = process_input(raw_input=TASK, data=env["DATA"], clients=clients_from_env(), progress=events.append)
    live = [e for e in events if e.live]
    assert live and len(live) <= r.metrics.time_taken * 4 + 2


def test_process_input_logs_progress_at_info_and_passes_sampling_caps(env, caplog):
    from promptomatix import process_input
    from promptomatix.cli.fakes import clients_from_env

    clients = clients_from_env()
    with caplog.at_level(logging.INFO, logger="promptomatix"):
        process_input(raw_input=TASK, data=env["DATA"], clients=clients, temperature=0.3, max_tokens=33)
    assert any("baseline" in m for m in caplog.messages)
    task_calls = clients["task"].calls
    assert task_calls and all(c["temperature"] == 0.3 for c in task_calls)


def test_feedback_generate_shows_signs_of_life(sid):
    from promptomatix.cli.fakes import clients_from_env
    from promptomatix.followup import generate_feedback

    events = []
    out = generate_feedback(sid, clients=clients_from_env(), progress=events.append, api_base="http://127.0.0.1:9/v1")
    stages = [e.message for e in events if e.stage == "feedback"]
    assert any("scoring version 1" in m for m in stages) and any("asking the teacher" in m for m in stages)
    assert out["feedback_items"]


def test_feedback_generate_takes_budget_and_credential_flags(sid):
    r = invoke(
        "feedback", "generate", sid, "--api-base", "http://u:pw@127.0.0.1:9/v1?code=s3", "--max-calls", "3",
        "--request-timeout", "5", "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["calls"] <= 3


def test_backend_options_reach_the_backend_and_a_bad_one_is_one_line(env, capsys):
    r = invoke("optimize", TASK, "--data", env["DATA"], "--json", "--backend-option", "rounds=1",
               "--backend-option", "candidates_per_round=2")  # fmt: skip
    assert r.exit_code == 0, r.output
    sid = json.loads(r.stdout)["session_id"]
    settings = SessionStore().load(sid).latest_version().settings
    assert settings["rounds"] == 1 and settings["candidates_per_round"] == 2
    with pytest.raises(SystemExit) as e:
        main(["optimize", TASK, "--data", env["DATA"], "-q", "--backend-option", "nonsense"])
    assert e.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value"), [("--backend", "nope"), ("--search-type", "nope")])
def test_a_value_no_setting_accepts_is_a_usage_error_before_any_session(env, capsys, flag, value):
    with pytest.raises(SystemExit) as e:  # exit 1 before: the same code as a run that failed
        main(["optimize", TASK, "--data", env["DATA"], flag, value, "--json"])
    err = capsys.readouterr()
    assert e.value.code == 2 and err.out == "" and len(err.err.strip().splitlines()) == 1
    assert not SessionStore().list()
