"""Review 17, finding 3: a second stop signal (SIGTERM/SIGHUP/Ctrl-C) that lands while the first one's best-so-far
is being saved, or while the run unwinds to save it, must not lose it. Before: exit 130 with `Error: interrupted`
only, the session left `running` with no version (or `failed` after "RuntimeError: release unlocked lock").

The second signal is sent by the run itself at the exact moment (a patched save, or the count of what the run
spent, computed just before the save), so the test does not depend on timing. Every wait is bounded."""

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
TASK = "Classify the sentiment of a movie review"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Say negative if the review complains."}]], "default": {}},
}
# Runs the CLI driver with one function patched to send this process SECOND_SIGNAL when it is first called.
SECOND_SIGNAL_DRIVER = """
import os, runpy, signal, sys
from promptomatix.run import ending, recorder
where, sig = os.environ["SECOND_AT"], getattr(signal, os.environ["SECOND_SIGNAL"])
owner, name = (recorder.SessionRecorder, "_save_interrupted") if where == "save" else (ending, "_spent")
original = getattr(owner, name)
sent = []
def patched(*args, **kwargs):
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), sig)
    return original(*args, **kwargs)
setattr(owner, name, patched)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture
def env(tmp_path):
    script = tmp_path / "fake.json"
    script.write_text(json.dumps(SCRIPT))
    (tmp_path / "second.py").write_text(SECOND_SIGNAL_DRIVER)
    e = dict(os.environ, PROMPTOMATIX_FAKE_LM=str(script), PROMPTOMATIX_SESSIONS_DIR=str(tmp_path / "s"))
    e.pop("PROMPTOMATIX_DEBUG", None)
    e.update(FAKE_LATENCY="0.2", FAKE_LATENCY_ROLE="task", DATA=str(write_reviews_csv(tmp_path / "reviews.csv")))
    return e, tmp_path / "second.py"


def _checkpointed(store: SessionStore, deadline: float):
    """The session once its baseline is scored (round 0 checkpoint): the best so far exists from then on."""
    while time.monotonic() < deadline:
        for row in store.list() if store.root.is_dir() else []:
            try:
                s = store.load(row.session_id)
            except Exception:  # mid-write: look again
                continue
            if s.status == "running" and (s.progress.get("checkpoint") or {}).get("round") == 0:
                return s
        time.sleep(0.05)
    pytest.fail("the run never scored its baseline")


@pytest.mark.parametrize(
    "first, second, at",
    [
        ("SIGINT", "SIGTERM", "save"),  # Ctrl-C, then `timeout`/`docker stop`
        ("SIGTERM", "SIGTERM", "save"),  # two SIGTERMs
        ("SIGINT", "SIGHUP", "unwind"),  # Ctrl-C, then the terminal closes
        ("SIGTERM", "SIGINT", "unwind"),
    ],
)
def test_a_second_stop_signal_keeps_the_best_so_far_and_ends_the_session(env, first, second, at):
    e, driver = env
    e = dict(e, SECOND_AT=at, SECOND_SIGNAL=second)
    args = [sys.executable, str(driver), DRIVER, "optimize", TASK, "--data", e["DATA"], "-q", "--json"]
    p = subprocess.Popen(args, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        s = _checkpointed(SessionStore(e["PROMPTOMATIX_SESSIONS_DIR"]), time.monotonic() + 60)
        p.send_signal(getattr(signal, first))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "best so far saved as version 1" in lines[0] and "Traceback" not in err, err
    assert out == ""
    after = SessionStore(e["PROMPTOMATIX_SESSIONS_DIR"]).load(s.session_id)
    assert after.status == "interrupted" and len(after.versions) == 1


def test_the_save_guard_leaves_a_default_sigterm_alone_and_restores_handlers():
    """A library caller whose SIGTERM has its default action still gets it (the process ends); a Python handler
    (the CLI's, which raises) is ignored for the save and put back after it."""
    from promptomatix.run.recorder import _no_second_interrupt

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with _no_second_interrupt():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN

        def handler(*_):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)
        with _no_second_interrupt():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)  # ignored: no KeyboardInterrupt in the middle of the save
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, before)
