"""Lock files inside a session directory (``.lock``, ``.run.lock``), opened without ever following a link.

A session directory can come from someone else (a tar, a git checkout, a shared drive). Its lock files were
opened with ``O_CREAT`` and the run lock was then truncated and written, so a ``.run.lock`` symlink made
`sessions delete` truncate a file outside the store, and a ``.lock`` symlink made `feedback add` create one.
Now a lock file is opened with ``O_NOFOLLOW`` and must be a regular file. Anything else in its place (a
symlink, a FIFO, a socket, a device) holds no data: its name is removed, never what it points to, and a
fresh file is created. A directory is refused with the fix. A regular file with other hard links is used for
locking but never written (`writable`): writing would change the file behind its other names.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promptomatix.errors import SessionError
from promptomatix.sessions.fs import display, writing

logger = logging.getLogger(__name__)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows: the lstat check before opening guards there
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO would otherwise block (a hung `sessions list`)
_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK}  # O_NOFOLLOW on a symlink: ELOOP (Linux), EMLINK (FreeBSD)


def _is_plain(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)


def _open_plain(path: Path, flags: int) -> int | None:
    """A descriptor of the regular file at `path` (created if absent and `flags` say so); None when something
    else is there. OSErrors other than "that is a link" propagate."""
    try:
        if not _is_plain(os.lstat(path)):
            return None
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, 0o600)
    except OSError as exc:
        if exc.errno in _LINK_ERRNOS or exc.errno == errno.EISDIR:
            return None
        raise
    if _is_plain(os.fstat(fd)):
        return fd
    os.close(fd)
    return None


@contextmanager
def _directory_mutex(directory: Path) -> Iterator[None]:
    """Serialize replacing a bad lock path between processes, so one never removes a file another just made.

    flock on the directory itself (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _clear(path: Path) -> None:
    """Remove whatever non-regular entry sits at `path` (the name only); refuse a directory."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if _is_plain(st):
        return
    if stat.S_ISDIR(st.st_mode):
        raise unusable(path, "a directory")
    kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
    os.unlink(path)  # removes the name: a link's target is never opened, truncated or written
    logger.warning("replaced %s: it was %s (what it pointed to was not touched)", display(path), kind)


def unusable(path: Path, what: str) -> SessionError:
    """The one-line error for a lock path that cannot be used, naming the path and the fix."""
    shown = display(path)
    return SessionError(
        f"cannot use the lock file {shown}: it is {what}, not a regular file; nothing was written",
        hint=f"move it away or remove it (`rm -r {shown}`): a lock file holds no session data",
    )


def open_lock(path: Path) -> int:
    """A read-write descriptor of the lock file at `path`, created if missing, never through a link.

    A symlink or special file there is replaced by a fresh empty file; a directory is refused (SessionError).
    OS errors become `writing`'s messages (read-only store, permission denied, disk full)."""
    flags = os.O_RDWR | os.O_CREAT
    with writing(path, "lock"):
        fd = _open_plain(path, flags)
        if fd is None:
            with _directory_mutex(path.parent):
                _clear(path)
                fd = _open_plain(path, flags)
    if fd is None:  # replaced again by someone between our clear and our open
        raise unusable(path, "replaced while being opened")
    return fd


def probe_lock(path: Path) -> int | None:
    """A read-only descriptor of the lock file at `path` if it is a regular file, else None (never creates,
    never follows a link, never blocks on a FIFO): for probing who holds it on a store that may be read-only."""
    try:
        return _open_plain(path, os.O_RDONLY)
    except OSError:
        return None


def writable(fd: int) -> bool:
    """Whether the lock file may be written: a file with other hard links would change behind those names."""
    try:
        return os.fstat(fd).st_nlink == 1
    except OSError:
        return False


def read_text(fd: int, limit: int = 1 << 16) -> str:
    """The start of the open lock file (its owner record), read from offset 0 whatever the file position."""
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, limit).decode("utf-8", errors="replace")
