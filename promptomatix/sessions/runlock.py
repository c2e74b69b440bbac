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
from promptomatix.sessions.fs import os_error, try_lock
from promptomatix.sessions.lockfile import open_lock, probe_lock, read_text, writable

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


def read_owner(fd: int) -> dict[str, Any] | None:
    """The owner record in an open run lock file, or None if empty/unreadable (read from the descriptor, never
    by path: the path could be a link placed there since)."""
    try:
        doc = json.loads(read_text(fd) or "null")
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


def _acquire(fd: int, session_id: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not try_lock(fd, offset=_WINDOWS_LOCK_OFFSET):
        owner = read_owner(fd)
        if owner_alive(owner) or time.monotonic() > deadline:
            raise busy_error(session_id, owner)
        time.sleep(0.02)


def _write_owner(fd: int, owner: dict[str, Any] | None) -> None:
    os.ftruncate(fd, 0)
    if owner is not None:
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(owner).encode())


def _record_owner(fd: int, path: Path, owner: dict[str, Any], *, best_effort: bool) -> None:
    """Write the owner record. It is only for messages, so `best_effort` (delete) lets a full disk pass: the
    delete that frees space must not be refused for want of space to say who is deleting."""
    try:
        _write_owner(fd, owner)
    except OSError as exc:
        if not best_effort:
            raise os_error(exc, path) from exc
        with suppress(OSError):
            os.ftruncate(fd, 0)  # no half-written record: readers take an empty one as "a run is starting"


@contextmanager
def _reenter(key: str, session_id: str) -> Iterator[dict[str, Any] | None]:
    """The owner if this thread already holds the run lock at `key` (depth counted), else None; another
    thread of this process holding it is busy."""
    me = threading.get_ident()
    with _held_guard:
        entry = _held.get(key)
        if entry is not None and entry[0] == me:
            entry[1] += 1
    if entry is None:
        yield None
        return
    if entry[0] != me:
        raise busy_error(session_id, entry[2])
    try:
        yield entry[2]
    finally:
        with _held_guard:
            entry[1] -= 1


@contextmanager
def hold_run_lock(
    directory: Path, session_id: str, *, command: str, best_effort_record: bool = False
) -> Iterator[dict[str, Any]]:
    """The run lock of the session in `directory`, held until the block exits; yields the owner record.

    Raises SessionError("session X is busy: …") when another process (or another thread of this one)
    holds it, and "no session" when the directory is gone. Re-entrant for the thread that holds it.
    `best_effort_record`: a failed owner-record write (disk full) is not fatal (for `sessions delete`).
    The lock file is opened without following links (`lockfile.open_lock`).
    """
    path = directory / RUN_LOCK_FILE
    with _reenter(str(path), session_id) as held:
        if held is not None:
            yield held
            return
        if not directory.is_dir():
            raise NotFoundError(f"no session {session_id!r}", hint="see `promptomatix sessions list`")
        fd = open_lock(path)
        try:
            _acquire(fd, session_id)
            if not _same_file(fd, path):  # deleted (`sessions delete`) between our open and our lock
                raise NotFoundError(f"session {session_id} was deleted", hint="see `promptomatix sessions list`")
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                     "started": datetime.now().astimezone().isoformat(timespec="seconds")}  # fmt: skip
            # Hard-linked: writing would change the file behind its other names. Decided once, here: after a
            # delete removes our name, the count drops and the clearing write below would hit the other file.
            record = writable(fd)
            if record:
                _record_owner(fd, path, owner, best_effort=best_effort_record)
            with _held_guard:
                _held[str(path)] = [threading.get_ident(), 1, owner]
            try:
                yield owner
            finally:
                with _held_guard:
                    _held.pop(str(path), None)
                if record:
                    with suppress(OSError):
                        _write_owner(fd, None)
        finally:
            os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` (not followed) still names the file `fd` has open."""
    try:
        return os.fstat(fd).st_ino == os.lstat(path).st_ino
    except FileNotFoundError:
        return False


def live_owner(directory: Path) -> dict[str, Any] | None:
    """The owner record if a run really holds the lock now (probed with the OS lock), else None."""
    path = directory / RUN_LOCK_FILE
    with _held_guard:
        entry = _held.get(str(path))
    if entry is not None:
        return dict(entry[2])
    fd = probe_lock(path)  # read-only (flock needs no write access); None: no plain lock file, nothing held
    if fd is None:
        return None
    try:
        if try_lock(fd, offset=_WINDOWS_LOCK_OFFSET):
            return None  # free: closing the descriptor releases our probe at once
        return read_owner(fd) or {"pid": None, "command": None}
    finally:
        os.close(fd)
