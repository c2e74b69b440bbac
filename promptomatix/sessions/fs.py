"""File-system helpers of the session store: atomic writes, locks, and OS errors turned into clear messages.

A read-only or full disk used to surface as a bare ``OSError`` or sqlite's "unable to open database file"
with no path. Every store write goes through `writing(path)`, which names the path and the fix.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from promptomatix.errors import SessionError

WRITABLE_HINT = "pass --sessions-dir DIR or set PROMPTOMATIX_SESSIONS_DIR to a writable folder"
_NOT_WRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
}
_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def display(path: Path) -> str:
    """`path` relative to the working directory when it is below it (shorter messages), else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def os_error(exc: OSError, path: Path, action: str = "write") -> SessionError:
    """A SessionError for `exc` that names `path`, what went wrong in words, and the fix."""
    shown = display(Path(exc.filename) if isinstance(exc.filename, str) and exc.filename else path)
    if exc.errno in _NOT_WRITABLE:
        return SessionError(f"cannot {action} {shown}: {_NOT_WRITABLE[exc.errno]}", hint=WRITABLE_HINT)
    if exc.errno in _FULL:
        return SessionError(
            f"cannot {action} {shown}: the disk is full (no space left on device); "
            "the previous session file was left intact",
            hint="free some disk space, or pass --sessions-dir DIR on another disk",
        )
    return SessionError(f"cannot {action} {shown}: {exc.strerror or exc}", hint=WRITABLE_HINT)


@contextmanager
def writing(path: Path, action: str = "write") -> Iterator[None]:
    """Turn any OSError raised inside into `os_error(…, path)` (SessionErrors pass through)."""
    try:
        yield
    except OSError as exc:
        raise os_error(exc, path, action) from exc


def fsync_dir(directory: Path) -> None:
    """Make a rename durable. Not possible on every platform (Windows), hence best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: a crash keeps the old file."""
    with writing(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
    fsync_dir(path.parent)


def try_lock(fd: int, *, offset: int = 0) -> bool:
    """Non-blocking exclusive lock on an open file; released when the descriptor closes or the process dies.

    `offset` matters only on Windows (byte-range locks): the run lock locks a byte past its owner record so
    the record stays readable.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, offset, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
