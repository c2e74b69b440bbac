"""Ctrl-C for real: SIGINT to a `promptomatix` subprocess at several moments (while importing, while a provider
call hangs, mid-run) exits 130 with one line and leaves the session `interrupted` (never `running`) with its
best-so-far. Three concurrent `resume`s of one session: one runs, the others refuse naming it. Every wait is
bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptomatix.sessions import SessionStore
from tests.review_rows import write_reviews_csv

ROOT = Path(__file__).resolve().parent.parent
DRIVER = str(ROOT / "tests" / "cli_driver.py")
CLI = str(Path(sys.executable).parent / "promptomatix")
TASK = "Classify the sentiment of a movie review"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Say negative if the review complains."}]], "default": {}},
}


@pytest.fixture
def env(tmp_path):
    script = tmp_path / "fake.json"
    script.write_text(json.dumps(SCRIPT))
    data = write_reviews_csv(tmp_path / "reviews.csv")
    e = dict(os.environ, PROMPTOMATIX_FAKE_LM=str(script), PROMPTOMATIX_SESSIONS_DIR=str(tmp_path / "s"))
    e.pop("PROMPTOMATIX_DEBUG", None)
    e["DATA"] = str(data)
    return e


def start(env, *args, latency=0.0, role=None, cli=False):
    e = dict(env, FAKE_LATENCY=str(latency))
    if role:
        e["FAKE_LATENCY_ROLE"] = role
    cmd = [CLI] if cli else [sys.executable, DRIVER]
    return subprocess.Popen([*cmd, *args], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def optimize(env, *extra, **kw):
    return start(env, "optimize", TASK, "--data", env["DATA"], "-q", *extra, **kw)


def sessions(env):
    store = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"])
    return [store.load(s.session_id) for s in store.list()] if store.root.is_dir() else []


def wait_for(pred, env, timeout=40.0):
    """Poll the sessions until pred(session) holds for one of them; fail (not hang) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for s in sessions(env):
            try:
                if pred(s):
                    return s
            except Exception:  # a session mid-write: look again
                pass
        time.sleep(0.05)
    pytest.fail("the run never reached the expected stage")


def interrupt(p, timeout=20.0):
    p.send_signal(signal.SIGINT)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail(f"no exit within {timeout} s of Ctrl-C")
    return p.returncode, out, err


def error_lines(err):
    return [line for line in err.splitlines() if line.strip()]


@pytest.mark.parametrize("delay", [0.2, 0.6])
def test_ctrl_c_in_the_first_second_exits_130(env, delay):
    p = optimize(env, cli=True)
    time.sleep(delay)
    code, out, err = interrupt(p)
    assert code == 130, err
    (line,) = error_lines(err)
    assert line.startswith("Error: interrupted") and "Traceback" not in err and out == ""
    assert all(s.status == "interrupted" for s in sessions(env))  # a session, if one was made, is not `running`


def test_ctrl_c_during_a_hung_call_exits_at_once_and_saves_the_session(env):
    p = optimize(env, latency=60.0, role="task")  # the teacher answers, the task model hangs
    s = wait_for(lambda s: s.status == "running" and "initial" in s.progress, env)
    time.sleep(0.3)  # the baseline calls are in flight now
    started = time.monotonic()
    code, _, err = interrupt(p, timeout=15.0)
    assert code == 130 and time.monotonic() - started < 10
    (line,) = error_lines(err)
    assert "interrupted" in line and f"promptomatix resume {s.session_id}" in line
    after = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).load(s.session_id)
    assert after.status == "interrupted" and not after.versions  # nothing was measured yet


def test_ctrl_c_mid_run_keeps_the_best_so_far_where_users_look(env):
    p = optimize(env, latency=0.2, role="task")
    # the baseline is measured, round 1 has not finished: the initial prompt is the best so far
    s = wait_for(lambda s: s.status == "running" and (s.progress.get("checkpoint") or {}).get("round") == 0, env)
    code, _, err = interrupt(p)
    assert code == 130 and "best so far saved as version 1" in err
    after = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).load(s.session_id)
    assert after.status == "interrupted"
    (v,) = after.versions
    assert v.settings["interrupted"] and v.settings["rounds_completed"] == 0 and v.valid.penalized is not None
    show = subprocess.run([CLI, "sessions", "show", s.session_id], env=env, capture_output=True, text=True, timeout=60)
    assert show.returncode == 0 and "v1" in show.stdout
    export = subprocess.run(
        [CLI, "sessions", "export", s.session_id], env=env, capture_output=True, text=True, timeout=60
    )
    assert export.returncode == 0 and export.stdout.startswith("[system]")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_run_as_ctrl_c_does(env, sig):
    """`timeout`, `docker stop` and a closed terminal send these: they killed the run at once, leaving the session
    `running` with no version."""
    p = optimize(env, latency=0.2, role="task")
    s = wait_for(lambda s: s.status == "running" and (s.progress.get("checkpoint") or {}).get("round") == 0, env)
    p.send_signal(sig)
    try:
        _, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("no exit within 20 s of the signal")
    assert p.returncode == 130 and "best so far saved as version 1" in err and "Traceback" not in err
    after = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).load(s.session_id)
    assert after.status == "interrupted" and len(after.versions) == 1


def test_three_concurrent_resumes_one_runs_the_others_refuse(env):
    dry = subprocess.run(
        [CLI, "optimize", TASK, "--data", env["DATA"], "--dry-run", "--json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    sid = json.loads(dry.stdout)["session_id"]
    procs = [start(env, "resume", sid, "-q", "--json", latency=0.05) for _ in range(3)]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a resume did not finish in 180 s")
        results.append((p.returncode, out, err))
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1 and len(losers) == 2, results
    assert json.loads(winners[0][1])["version"] == 1
    winner_pid = procs[[r[0] for r in results].index(0)].pid
    for code, out, err in losers:
        (line,) = error_lines(err)
        assert code == 1 and out == "" and f"process {winner_pid}" in line
    s = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).load(sid)
    assert s.status == "completed" and [v.version for v in s.versions] == [1]


def test_a_run_killed_outright_has_its_spending_counted_when_resumed(env):
    """SIGKILL (or the OOM killer) leaves no handler a chance: what the run spent up to its last checkpoint is
    counted in the session and against the resumed run's limit (the resume got the whole budget again, and
    `sessions show` left the killed attempt's calls out)."""
    p = optimize(env, "--max-calls", "400", latency=0.05)
    s = wait_for(lambda s: s.status == "running" and (s.progress or {}).get("spent_live"), env)
    p.kill()
    p.communicate(timeout=20)
    live = sessions(env)[0].progress["spent_live"]
    assert live["calls"] > 0
    r = subprocess.run([sys.executable, DRIVER, "resume", s.session_id, "--json"], env=env, capture_output=True,
                       text=True, timeout=240)  # fmt: skip
    assert r.returncode == 0, r.stderr
    (after,) = sessions(env)
    assert after.status == "completed" and any(e["kind"] == "crashed" for e in after.events)
    assert after.total_spent().calls >= live["calls"] + json.loads(r.stdout)["metrics"]["calls"]
    assert "of --max-calls 400 before it stopped" in " ".join(json.loads(r.stdout)["notes"])
