"""One live run per session, across processes: an OS lock held for the whole run, with its owner on record.

Three `resume`s of one session used to run side by side (paying for every call three times), and
`sessions delete` removed a session under a live run. Now every run holds ``<session dir>/.run.lock``
with ``flock`` (non-blocking, exclusive) from start to end. The OS releases it when the process exits,
however it exits (SIGKILL included), so a crashed run never leaves a session locked; the owner record in
the file (pid, host, command, start time) is only for messages, never trusted as proof of life.

The short per-write lock (``.lock``, `SessionStore.lock`) is separate: feedback can be added to a session
while a run holds its run lock.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from promptomatix.errors import NotFoundError, SessionError
from promptomatix.sessions.fs import try_lock, writing

RUN_LOCK_FILE = ".run.lock"
BUSY_HINT = "wait for it to finish or stop it with Ctrl-C"
# A held lock whose record is empty or names a dead process is a run that is just starting, or a
# `live_run` probe: retry this long before calling the session busy.
SETTLE_S = 1.0
_WINDOWS_LOCK_OFFSET = 1 << 20  # msvcrt locks bytes; lock one far past the owner record

# Runs held by this process: lock path -> [thread id, depth, owner]. Lets the thread that holds a run
# lock take it again (a command wrapping a library call that locks too) without deadlocking itself.
_held: dict[str, list[Any]] = {}
_held_guard = threading.Lock()


def read_owner(path: Path) -> dict[str, Any] | None:
    """The owner record in a run lock file, or None if absent/empty/unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the recorded process still exists (always assumed for another host: it cannot be checked)."""
    if not owner or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists under another user (or cannot tell): assume alive
        return True
    return True


def describe_owner(owner: dict[str, Any] | None) -> str:
    """'`resume` running as process 1234 on host since 12:03:11' (or what is known of it)."""
    if not owner or not isinstance(owner.get("pid"), int):
        return "a run is starting"
    text = f"`{owner.get('command') or 'a run'}` running as process {owner['pid']} on {owner.get('host') or '?'}"
    try:
        started = datetime.fromisoformat(str(owner.get("started"))).astimezone()
    except (TypeError, ValueError):
        return text
    same_day = started.date() == datetime.now().astimezone().date()
    return text + f" since {started:%H:%M:%S}" if same_day else text + f" since {started:%Y-%m-%d %H:%M:%S}"


def busy_error(session_id: str, owner: dict[str, Any] | None) -> SessionError:
    return SessionError(f"session {session_id} is busy: {describe_owner(owner)}", hint=BUSY_HINT)


def _acquire(fd: int, path: Path, session_id: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not try_lock(fd, offset=_WINDOWS_LOCK_OFFSET):
        owner = read_owner(path)
        if owner_alive(owner) or time.monotonic() > deadline:
            raise busy_error(session_id, owner)
        time.sleep(0.02)


def _write_owner(fd: int, owner: dict[str, Any] | None) -> None:
    os.ftruncate(fd, 0)
    if owner is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(owner).encode())


@contextmanager
def hold_run_lock(directory: Path, session_id: str, *, command: str) -> Iterator[dict[str, Any]]:
    """The run lock of the session in `directory`, held until the block exits; yields the owner record.

    Raises SessionError("session X is busy: …") when another process (or another thread of this one)
    holds it, and "no session" when the directory is gone. Re-entrant for the thread that holds it.
    """
    path = directory / RUN_LOCK_FILE
    key, me = str(path), threading.get_ident()
    with _held_guard:
        entry = _held.get(key)
        if entry is not None and entry[0] == me:
            entry[1] += 1
    if entry is not None:
        if entry[0] != me:
            raise busy_error(session_id, entry[2])
        try:
            yield entry[2]
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    if not directory.is_dir():
        raise NotFoundError(f"no session {session_id!r}", hint="see `promptomatix sessions list`")
    with writing(path, "lock"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, session_id)
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # deleted (`sessions delete`) between our open and our lock
            raise NotFoundError(f"session {session_id} was deleted", hint="see `promptomatix sessions list`")
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                 "started": datetime.now().astimezone().isoformat(timespec="seconds")}  # fmt: skip
        with writing(path):
            _write_owner(fd, owner)
        with _held_guard:
            _held[key] = [me, 1, owner]
        try:
            yield owner
        finally:
            with _held_guard:
                _held.pop(key, None)
            with suppress(OSError):
                _write_owner(fd, None)
    finally:
        os.close(fd)  # releases the lock


def live_owner(directory: Path) -> dict[str, Any] | None:
    """The owner record if a run really holds the lock now (probed with the OS lock), else None."""
    path = directory / RUN_LOCK_FILE
    with _held_guard:
        entry = _held.get(str(path))
    if entry is not None:
        return dict(entry[2])
    try:
        fd = os.open(path, os.O_RDONLY)  # flock needs no write access: works on a read-only store too
    except OSError:  # no lock file (never ran) or unreadable: nothing provably running
        return None
    try:
        if try_lock(fd, offset=_WINDOWS_LOCK_OFFSET):
            return None  # free: closing the descriptor releases our probe at once
        return read_owner(path) or {"pid": None, "command": None}
    finally:
        os.close(fd)
