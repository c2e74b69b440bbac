"""Review 17, the command line: a wrong value exits 2 ("2 for a wrong command line") with one line naming the fix,
as its siblings do (finding 5: `sessions pick --lambda -1`, `batch --ray-address` without `--executor ray`,
`--executor nope` and `--track bogus` exited 1, as a failed run); and the `sessions delete` prompt (finding 6): no
answer (stdin closed: a script, CI) is one line naming --yes and exit 1, Ctrl-C at the prompt is 130 (both were a
silent exit 1). Every wait is bounded."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptomatix.errors import UsageError
from promptomatix.sessions import SessionStore
from tests.batch_helpers import SCRIPT, write_jobs, write_script
from tests.test_review17_secrets import run as run_main

CLI = str(Path(sys.executable).parent / "promptomatix")
TASK = "Classify the sentiment of a movie review"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(tmp_path, SCRIPT)))
    jobs = write_jobs(tmp_path, "jobs:\n  - {name: one}\n")
    return tmp_path, jobs


def run(capsys, *args: str) -> tuple[int, str, list[str]]:
    code, out, err = run_main(capsys, *args)
    return code, out, [x for x in err.splitlines() if x.strip()]


@pytest.fixture
def sid(env, capsys):
    tmp, _ = env
    code, out, err = run(capsys, "optimize", TASK, "--data", str(tmp / "reviews.csv"), "--json", "-q")
    assert code == 0, err
    return json.loads(out)["session_id"]


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_pick_with_a_wrong_lambda_is_a_usage_error(sid, capsys, value):
    before = SessionStore().session_file(sid).read_bytes()
    code, out, lines = run(capsys, "sessions", "pick", sid, f"--lambda={value}", "--json")
    assert code == 2 and out == "" and len(lines) == 1 and "--lambda" in lines[0] and "e.g. --lambda 0.005" in lines[0]
    assert SessionStore().session_file(sid).read_bytes() == before


@pytest.mark.parametrize(
    "args, says",
    [
        (["--ray-address", "1.2.3.4:1"], "--ray-address needs --executor ray"),
        (["--ray-cpus", "2"], "--ray-cpus needs --executor ray"),  # it was ignored without a word
        (["--executor", "nope"], "choose --executor local or --executor ray"),
        (["--track", "bogus"], "use --track mlflow or --track mlflow:URI"),
    ],
)
def test_wrong_batch_flags_are_usage_errors_before_any_job(env, capsys, args, says):
    _, jobs = env
    code, out, lines = run(capsys, "batch", str(jobs), *args, "--json", "-q")
    assert code == 2 and out == "" and len(lines) == 1 and says in lines[0], lines
    assert not SessionStore().root.exists() or not SessionStore().list()  # nothing ran


def test_make_executor_refuses_wrong_names_as_usage_errors():
    from promptomatix.batch.executors import make_executor

    with pytest.raises(UsageError, match="--ray-address needs --executor ray"):
        make_executor("local", ray_address="1.2.3.4:1")
    with pytest.raises(UsageError, match="unknown executor 'nope'"):
        make_executor("nope")


def test_an_unknown_tracker_is_a_usage_error_for_every_run_command(env, sid, capsys):
    tmp, _ = env
    n = len(SessionStore().list())
    for args in (["optimize", TASK, "--data", str(tmp / "reviews.csv")], ["refine", sid], ["resume", sid]):
        code, out, lines = run(capsys, *args, "--track", "bogus", "--json", "-q")
        assert code == 2 and out == "" and len(lines) == 1, (args, lines)
        assert "unknown tracker 'bogus'" in lines[0] and "--track mlflow" in lines[0]
    assert len(SessionStore().list()) == n  # no session made, none touched
    assert len(SessionStore().load(sid).versions) == 1


def test_delete_without_an_answer_names_yes_and_keeps_the_session(sid, env):
    e = {k: v for k, v in os.environ.items() if k != "PROMPTOMATIX_DEBUG"}
    r = subprocess.run([CLI, "sessions", "delete", sid], env=e, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: not deleted") and "--yes" in lines[0]
    assert SessionStore().exists(sid)


def _read_until(fd: int, needle: bytes, deadline: float) -> bytes:
    seen = b""
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def _exit_status(pid: int, deadline: float) -> int | None:
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    return None


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_ctrl_c_at_the_delete_prompt_exits_130_and_keeps_the_session(sid, env):
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command on a terminal of its own
        os.execv(CLI, [CLI, "sessions", "delete", sid])
    try:
        assert b"[y/N]" in _read_until(fd, b"[y/N]", time.monotonic() + 60), "no prompt"
        time.sleep(0.3)  # let it wait in the prompt
        shown, status = b"", None
        for _ in range(3):  # a Ctrl-C that lands just before readline waits is lost in CPython: press it again
            os.write(fd, b"\x03")  # Ctrl-C, as the terminal sends it
            shown += _read_until(fd, b"interrupted", time.monotonic() + 5)
            status = _exit_status(pid, time.monotonic() + 5)
            if status is not None:
                break
        assert status is not None, f"no exit after Ctrl-C: {shown!r}"
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 130, shown
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.decode(errors="replace"))  # the terminal's colours
    assert "Error: interrupted" in text and "Traceback" not in text
    assert SessionStore().exists(sid)
