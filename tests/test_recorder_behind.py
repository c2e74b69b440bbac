"""Checkpoints and the search's start are written to the session behind the run (a thread of their own, so the
model's calls overlap the CPU of a session write); every later write waits for them, so the session's writes
land in the order they were made, and a failed one is not lost."""

from __future__ import annotations

import threading
import time

import pytest

from promptomatix.errors import SessionError
from promptomatix.run.checkpoint import BestSoFar, Checkpoint
from promptomatix.run.recorder import SessionRecorder
from promptomatix.sessions import SessionStore


class SlowStore(SessionStore):
    """Each update takes `delay` seconds; `fail` makes the next one raise."""

    delay = 0.0
    fail = False

    def update(self, session_id, fn):
        time.sleep(self.delay)
        if self.fail:
            self.fail = False
            raise SessionError("disk full")
        return super().update(session_id, fn)


def recorder(tmp_path):
    store = SlowStore(tmp_path)
    sid = store.new_session(description="d", raw_input="d", run_config={}, status="running").session_id
    return store, SessionRecorder(store, sid)


CP = Checkpoint(round=2, best=BestSoFar(instructions="best so far", valid_raw=0.5, valid_penalized=0.5))


def test_a_checkpoint_returns_before_its_write_and_the_next_write_lands_after_it(tmp_path):
    store, rec = recorder(tmp_path)
    store.delay = 0.3
    started = time.perf_counter()
    rec.checkpoint(CP)
    assert time.perf_counter() - started < 0.2  # the run goes on while the session is written
    rec.completed({"prompt": "p", "backend": "meta"}, {})  # waits for the checkpoint, then clears progress
    session = store.load(rec.sid)
    assert session.status == "completed" and session.progress == {}  # the checkpoint did not land after it
    assert not [t for t in threading.enumerate() if t.name == "promptomatix-session-write"]


def test_a_failed_write_behind_is_raised_by_the_next_write_and_a_failure_is_still_recorded(tmp_path):
    store, rec = recorder(tmp_path)
    store.fail = True
    rec.checkpoint(CP)
    with pytest.raises(SessionError, match="disk full"):
        rec.spec_only(type("Spec", (), {"model_dump": lambda self, mode: {}})())
    store.fail = True
    rec.checkpoint(CP)
    rec.failed("the model could not answer")  # logs the lost checkpoint, marks the session failed anyway
    assert store.load(rec.sid).status == "failed"
