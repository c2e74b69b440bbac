"""One live run per session, across real processes: a second run and `sessions delete` refuse naming the pid;
the lock is free once the holder exits, even when it is killed with SIGKILL.

Before: three concurrent `resume`s all ran and `sessions delete` removed a session under a live run.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from typer.testing import CliRunner

from promptomatix.cli.app import app, main
from promptomatix.errors import SessionError
from promptomatix.sessions import SessionStore, add_feedback
from promptomatix.sessions.runlock import RUN_LOCK_FILE

WAIT_S = 20.0

HOLDER = textwrap.dedent(
    """
    import sys
    from promptomatix.sessions import SessionStore
    store = SessionStore(sys.argv[1])
    with store.run_lock(sys.argv[2], command="resume"):
        print("locked", flush=True)
        sys.stdin.readline()  # hold until the parent closes our stdin (or kills us)
    print("released", flush=True)
    """
)


def _readline(proc: subprocess.Popen, timeout: float = WAIT_S) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "child did not answer in time"
    return proc.stdout.readline().strip()


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def holder(store):
    """A child process holding the run lock of a fresh 'running' session; yields (session id, process)."""
    s = store.new_session(raw_input="x", status="running")
    s.add_version("Answer.", backend="initial")
    store.save(s)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.root), s.session_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert _readline(proc) == "locked"
        yield s.session_id, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)


def test_second_run_and_delete_refuse_naming_the_live_process(store, holder):
    sid, proc = holder
    started = time.monotonic()
    busy = rf"session {sid} is busy: `resume` running as process {proc.pid} on "
    with pytest.raises(SessionError, match=busy), store.run_lock(sid, command="refine"):
        pytest.fail("two runs of one session")
    assert time.monotonic() - started < 5  # refused at once, not after a long wait
    with pytest.raises(SessionError, match=rf"busy: `resume` running as process {proc.pid}") as exc:
        store.delete(sid)
    assert "wait for it to finish or stop it with Ctrl-C" in str(exc.value)
    assert store.exists(sid)
    owner = store.live_run(sid)
    assert owner is not None and owner["pid"] == proc.pid and owner["command"] == "resume"


def test_cli_delete_list_and_show_see_the_live_run(store, holder, capsys):
    sid, proc = holder
    with pytest.raises(SystemExit) as exit_info:
        main(["sessions", "delete", sid, "--yes", "--sessions-dir", str(store.root)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"busy: `resume` running as process {proc.pid}" in err and "Traceback" not in err
    assert store.exists(sid)
    runner = CliRunner()
    listing = runner.invoke(app, ["sessions", "list", "--sessions-dir", str(store.root)]).output
    assert f"running (pid {proc.pid})" in listing
    shown = runner.invoke(app, ["sessions", "show", sid, "--sessions-dir", str(store.root)]).output
    assert f"running (pid {proc.pid})" in shown


def test_feedback_is_accepted_during_a_run(store, holder):
    sid, _ = holder
    item = add_feedback(store, sid, comment="shorter please")
    assert store.load(sid).get_feedback(item.id).status == "open"


def test_lock_is_released_when_the_holder_finishes(store, holder):
    sid, proc = holder
    proc.stdin.close()
    assert _readline(proc) == "released"
    proc.wait(timeout=WAIT_S)
    assert store.live_run(sid) is None
    assert (store.session_dir(sid) / RUN_LOCK_FILE).read_text() == ""  # owner record cleared
    with store.run_lock(sid, command="refine") as owner:
        assert owner["pid"] == os.getpid()


def test_lock_is_released_when_the_holder_is_killed(store, holder):
    sid, proc = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=WAIT_S)
    assert store.live_run(sid) is None  # the stale owner record is not taken as proof of life
    runner = CliRunner()
    listing = runner.invoke(app, ["sessions", "list", "--sessions-dir", str(store.root)]).output
    assert "stale" in listing and "running" not in listing.split("\n", 1)[1]
    shown = runner.invoke(app, ["sessions", "show", sid, "--sessions-dir", str(store.root)]).output
    assert "stale" in shown and f"promptomatix resume {sid}" in shown
    with store.run_lock(sid, command="resume"):
        assert store.live_run(sid)["pid"] == os.getpid()
    store.delete(sid)
    assert not store.session_dir(sid).exists()


def test_reentrant_in_one_thread_exclusive_across_threads(store):
    sid = store.new_session(raw_input="x").session_id
    errors: list[Exception] = []

    def other_thread() -> None:
        try:
            with store.run_lock(sid, command="refine"):
                pass
        except SessionError as e:
            errors.append(e)

    with store.run_lock(sid, command="resume"):
        with store.run_lock(sid, command="resume") as inner:  # e.g. a command wrapping a library call
            assert inner["pid"] == os.getpid()
        t = threading.Thread(target=other_thread)
        t.start()
        t.join(timeout=WAIT_S)
        assert store.live_run(sid) is not None  # still held after the inner block
    assert len(errors) == 1 and f"process {os.getpid()}" in str(errors[0])
    assert store.live_run(sid) is None


def test_run_lock_on_missing_or_deleted_session(store):
    with pytest.raises(SessionError, match="no session"), store.run_lock("20990101-000000-abcdef", command="resume"):
        pass
    sid = store.new_session(raw_input="x").session_id
    store.delete(sid)
    with pytest.raises(SessionError, match="no session"), store.run_lock(sid, command="resume"):
        pass


RACER = textwrap.dedent(
    """
    import sys, time
    from promptomatix.errors import SessionError
    from promptomatix.sessions import SessionStore
    store = SessionStore(sys.argv[1])
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all start together
    try:
        with store.run_lock(sys.argv[2], command="resume"):
            print("locked", flush=True)
            time.sleep(2.0)
    except SessionError as e:
        print("busy" if "is busy" in str(e) else f"error {e}", flush=True)
    """
)


def test_three_concurrent_runs_exactly_one_proceeds(store):
    sid = store.new_session(raw_input="x").session_id
    start_at = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(store.root), sid, start_at], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    try:
        outcomes = sorted(p.communicate(timeout=WAIT_S)[0].strip() for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert outcomes == ["busy", "busy", "locked"]


PROBER = textwrap.dedent(
    """
    import sys, time
    from promptomatix.sessions import SessionStore
    store = SessionStore(sys.argv[1])
    print("probing", flush=True)
    end = time.monotonic() + float(sys.argv[3])
    n = 0
    while time.monotonic() < end:
        store.live_run(sys.argv[2])
        n += 1
    print(n, flush=True)
    """
)


def test_status_probes_never_make_a_run_refuse(store):
    """`sessions list` probes the lock from other processes; a run starting meanwhile must not see 'busy'."""
    sid = store.new_session(raw_input="x").session_id
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBER, str(store.root), sid, "4"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert _readline(proc) == "probing"
        deadline = time.monotonic() + 3
        runs = 0
        while time.monotonic() < deadline:
            with store.run_lock(sid, command="resume"):
                runs += 1
        assert int(_readline(proc)) > 100 and runs > 100  # they really overlapped
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=WAIT_S)
