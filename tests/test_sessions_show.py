"""`sessions show`/`export` after Ctrl-C, a kill or a failure: the best so far is visible and labelled, and a
session without versions says what happened and which command continues it.

Before: after Ctrl-C `sessions show` printed only a header and `export` said "no prompt versions yet".
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.sessions import Score, SessionStore, TestScore

LABEL = "best so far (interrupted, not scored on the held-out test)"
runner = CliRunner()


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def _interrupted(store: SessionStore, *, with_initial: bool) -> str:
    s = store.new_session(raw_input="Classify reviews", description="reviews", status="interrupted")
    if with_initial:
        s.add_version("Classify.", backend="simple_meta_prompt", valid=Score(raw=0.5), test=TestScore(mean=0.5, n=7))
    s.add_version(
        "Classify the review as positive or negative.",
        backend="simple_meta_prompt",
        valid=Score(raw=0.7, penalized=0.69),
        settings={"interrupted": True},
    )
    s.add_event("interrupted")
    store.save(s)
    return s.session_id


def _cli(*args: str):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("with_initial", [True, False])
def test_show_labels_the_interrupted_best_so_far(store, with_initial):
    sid = _interrupted(store, with_initial=with_initial)
    out = _cli("sessions", "show", sid, "--sessions-dir", str(store.root)).output
    version_lines = [line for line in out.splitlines() if line.startswith("v")]
    assert LABEL in version_lines[-1] and all(LABEL not in line for line in version_lines[:-1])
    assert f"prompt v{len(version_lines)} — {LABEL}" in out  # the prompt itself is shown, titled as such
    assert "Classify the review as positive or negative." in out
    assert f"promptomatix resume {sid}" in out


def test_export_renders_the_interrupted_version(store, capsys):
    sid = _interrupted(store, with_initial=False)
    main(["sessions", "export", sid, "--sessions-dir", str(store.root)])  # returns: exit 0
    out, err = capsys.readouterr()
    assert out == "Classify the review as positive or negative.\n"  # stdout: the bare prompt
    assert LABEL in err  # the label goes to stderr, so a pipe gets only the prompt
    doc = json.loads(_cli("sessions", "export", sid, "--format", "json", "--sessions-dir", str(store.root)).stdout)
    assert doc["versions"][0]["settings"]["interrupted"] is True


def _without_versions(store: SessionStore, status: str, **event) -> str:
    s = store.new_session(raw_input="Summarize", description="sum", status=status)
    if event:
        s.add_event(**event)
    store.save(s)
    return s.session_id


@pytest.mark.parametrize(
    "status, event, show_says, export_says",
    [
        ("failed", {"kind": "failed", "error": "connection refused at http://127.0.0.1:9/v1"},
         "the run failed (", "failed before any prompt version was saved"),
        ("interrupted", {"kind": "interrupted"}, "interrupted (", "was interrupted before any prompt version"),
        ("running", {}, "stale: recorded as running, but no process holds it", "stopped (its process is gone)"),
        ("created", {}, "stopped before its first stage", "has no prompt versions yet"),
    ],
)  # fmt: skip
def test_no_versions_says_what_happened_and_what_to_do(store, capsys, status, event, show_says, export_says):
    sid = _without_versions(store, status, **event)
    out = _cli("sessions", "show", sid, "--sessions-dir", str(store.root)).output
    assert show_says in out and f"promptomatix resume {sid}" in out
    assert "no prompt version was saved yet" in out or status == "created"
    if event.get("error"):
        assert event["error"] in out
    with pytest.raises(SystemExit) as exit_info:
        main(["sessions", "export", sid, "--sessions-dir", str(store.root)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and export_says in err and f"promptomatix resume {sid}" in err


def test_completed_without_versions_suggests_nothing_impossible(store, capsys):
    sid = _without_versions(store, "completed")
    with pytest.raises(SystemExit):
        main(["sessions", "export", sid, "--sessions-dir", str(store.root)])
    err = capsys.readouterr().err
    assert "has no prompt versions yet" in err and "resume" not in err


def test_list_marks_a_dead_running_session_stale(store):
    _without_versions(store, "running")
    out = _cli("sessions", "list", "--sessions-dir", str(store.root)).output
    assert "stale" in out.splitlines()[1]
    rows = json.loads(_cli("sessions", "list", "--json", "--sessions-dir", str(store.root)).stdout)
    assert rows[0]["status"] == "running" and rows[0]["live_run"] is None


def test_show_counts_what_every_run_spent(store):
    from promptomatix.sessions.models import Usage

    sid = _without_versions(store, "failed", kind="failed", error="budget of 40 LM calls spent")
    store.update(sid, lambda s: s.add_spent(Usage(calls=40, cached_calls=3, prompt_tokens=1000, cost_usd=0.02)))
    out = _cli("sessions", "show", sid, "--sessions-dir", str(store.root)).output
    assert "spent in all runs: 40 calls (3 cached), 1000 tokens, $0.0200" in out


def test_show_says_which_tokens_are_estimated(store):
    """A server that sends no token counts gets estimated ones; `sessions show` said nothing of it."""
    from promptomatix.sessions.models import Usage

    sid = _without_versions(store, "failed", kind="failed", error="stopped")
    spent = Usage(calls=5, prompt_tokens=800, estimated_calls=3, cost_usd=0.01)
    store.update(sid, lambda s: s.add_spent(spent))
    store.update(sid, lambda s: s.add_spent(Usage(calls=2, estimated_calls=1)))
    out = _cli("sessions", "show", sid, "--sessions-dir", str(store.root)).output
    assert "800 tokens (estimated for 4 calls the server sent no counts for)" in out
