"""Small edges of `sessions`/`feedback` found by review 13: a bad `--diff` fails before anything is printed,
feedback given before any version reads "no version" (not "vNone"), a live run's status fits its column, a
declined delete says so, and a DSPy run's picked candidate exports its program when it is the compiled one (and
says why not otherwise)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.sessions import Score, SessionStore

runner = CliRunner()
PROGRAM = {"predict": {"signature": {"instructions": "Classify."}, "demos": []}, "metadata": {}}


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def _boundary(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


def _two_versions(store: SessionStore) -> str:
    s = store.new_session(raw_input="Classify reviews", description="reviews", status="completed")
    s.add_version("Classify.", backend="simple_meta_prompt", valid=Score(raw=0.5))
    s.add_version("Classify the review.", backend="simple_meta_prompt", valid=Score(raw=0.6))
    store.save(s)
    return s.session_id


@pytest.mark.parametrize("json_", [[], ["--json"]])
def test_a_missing_diff_version_fails_before_anything_is_printed(store, capsys, json_):
    """With --json it exited 0 ignoring the bad version; without, it printed the header, then failed."""
    sid = _two_versions(store)
    code, out, err = _boundary(capsys, "sessions", "show", sid, "--diff", "1", "9", *json_,
                               "--sessions-dir", str(store.root))  # fmt: skip
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1 and "has no version 9" in err


def test_feedback_before_any_version_reads_no_version(store):
    s = store.new_session(raw_input="Summarize", description="sum", status="created")
    store.save(s)
    d = ["--sessions-dir", str(store.root)]
    assert runner.invoke(app, ["feedback", "add", s.session_id, "--comment", "Be brief.", *d]).exit_code == 0
    listed = runner.invoke(app, ["feedback", "list", s.session_id, *d]).stdout
    shown = runner.invoke(app, ["sessions", "show", s.session_id, *d]).stdout
    assert "vNone" not in listed + shown
    assert "fb1\topen\thuman\tno version: Be brief." in listed and "fb1 open human no version: Be brief." in shown


def test_a_live_runs_status_fits_its_column(store, monkeypatch):
    """ "running (pid 16086)" overflowed the 11-character status column and shifted its row."""
    live = _two_versions(store)
    _two_versions(store)
    monkeypatch.setattr(
        "promptomatix.sessions.store.live_owner", lambda entry: {"pid": 1234567} if entry.name == live else None
    )
    lines = runner.invoke(app, ["sessions", "list", "--sessions-dir", str(store.root)]).stdout.splitlines()
    assert any("running (pid 1234567)" in line for line in lines)
    header, *rows = lines
    assert len(rows) == 2 and all(row.index("reviews") == header.index("description") for row in rows)


def test_declining_a_delete_says_it_was_not_deleted(store):
    sid = _two_versions(store)
    r = runner.invoke(app, ["sessions", "delete", sid, "--sessions-dir", str(store.root)], input="n\n")
    assert r.exit_code == 1 and f"not deleted: {sid}" in r.output and store.exists(sid)


def _dspy_run(store: SessionStore) -> str:
    """A DSPy run: v1 is its compiled program (candidate #0); candidate #1 is another point of its front."""
    s = store.new_session(raw_input="Classify reviews", description="reviews", status="completed")
    points = [("Classify.", 0.8), ("Label it.", 0.7)]
    cands = [{"id": i, "prompt": p, "instructions": p, "valid_raw": r, "valid_penalized": r, "length": len(p.split()),
              "demos": [], "format_line": None} for i, (p, r) in enumerate(points)]  # fmt: skip
    s.add_version("Classify.", backend="dspy", valid=Score(raw=0.8), program_json=PROGRAM, candidates=cands)
    store.save(s)
    return s.session_id


def test_picking_the_compiled_program_of_a_dspy_run_keeps_it_and_another_pick_says_why_not(store, capsys):
    sid = _dspy_run(store)
    d = ["--sessions-dir", str(store.root)]
    assert runner.invoke(app, ["sessions", "pick", sid, "1", *d]).exit_code == 0  # v2: not the compiled one
    code, out, err = _boundary(capsys, "sessions", "export", sid, "--format", "dspy", *d)
    assert code == 1 and out == "" and "candidate #1 of v1, made by `sessions pick`" in err
    assert "--version 1 --format dspy" in err and len(err.strip().splitlines()) == 1
    assert runner.invoke(app, ["sessions", "pick", sid, "0", *d]).exit_code == 0  # v3: the compiled program
    assert store.load(sid).latest_version().version == 3
    r = runner.invoke(app, ["sessions", "export", sid, "--format", "dspy", *d])
    assert r.exit_code == 0 and json.loads(r.stdout)["predict"] == PROGRAM["predict"]
