"""The batch state file: which session each job of a jobs file runs in, so a re-run skips and resumes.

It lives in the session store (`<sessions>/.batches/<file stem>-<hash of its path>.json`), because session ids
mean something only in their store. It maps job key → session id and nothing else: a job's status is always read
from its session, which its run keeps up to date even when the driver dies. The file is written atomically and
a batch holds an exclusive lock on it while it runs, so two runs of the same file cannot race.

The `.token` beside it lets a worker tell whether the driver's store is visible to it (one machine or a shared
path): it writes sessions there directly; otherwise sessions travel back to the driver as bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from promptomatix.errors import ConfigurationError

BATCHES_DIR = ".batches"


class BatchState:
    """Job key → session id for one jobs file, stored in the session store's root."""

    def __init__(self, store_root: Path, jobs_file: Path) -> None:
        resolved = jobs_file.expanduser().resolve()
        digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:10]
        self.dir = Path(store_root) / BATCHES_DIR
        self.path = self.dir / f"{jobs_file.stem}-{digest}.json"
        self.jobs_file = resolved
        self.sessions: dict[str, str] = {}
        self.token = ""

    def load(self) -> BatchState:
        if self.path.is_file():
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise self._unreadable(str(e)) from None
            self.sessions = self._sessions_of(doc)
        token_file = self.path.with_suffix(".token")
        if token_file.is_file():
            self.token = token_file.read_text(encoding="utf-8").strip()
        if not self.token:
            self.token = secrets.token_hex(16)
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic(token_file, self.token)
        return self

    def _sessions_of(self, doc: Any) -> dict[str, str]:
        """The job key → session id map of a loaded state file; a file of another shape (a hand edit, a partial
        sync) is refused as one that does not load."""
        if not isinstance(doc, dict):
            raise self._unreadable(f"not a JSON object but {type(doc).__name__}")
        sessions = doc.get("sessions") or {}
        if not isinstance(sessions, dict):
            raise self._unreadable(f"'sessions' is a {type(sessions).__name__}, not a map of job keys to session ids")
        wrong = [k for k, v in sessions.items() if not isinstance(v, str)]
        if wrong:
            raise self._unreadable(f"the session id of job key {wrong[0]!r} is not a string")
        return dict(sessions)

    def _unreadable(self, why: str) -> ConfigurationError:
        return ConfigurationError(
            f"the batch state {self.path} does not load ({why})", hint="delete it to start the batch over"
        )

    def assign(self, key: str, session_id: str) -> None:
        self.sessions[key] = session_id
        self.save()

    def save(self) -> None:
        doc: dict[str, Any] = {"jobs_file": str(self.jobs_file), "sessions": self.sessions}
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic(self.path, json.dumps(doc, indent=2) + "\n")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the batch's lock for its whole run; a second run of the same file is refused, not raced."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock(fd):
                raise ConfigurationError(
                    f"the batch {self.jobs_file.name} is already running in another process",
                    hint="wait for it to finish (its sessions show in `promptomatix sessions list`)",
                )
            yield
        finally:
            os.close(fd)


def store_is_shared(root: str, token: str) -> bool:
    """True when this process sees the driver's store (same machine or a shared path), told by the token."""
    if not token:
        return False
    try:
        for token_file in (Path(root) / BATCHES_DIR).glob("*.token"):
            if token_file.read_text(encoding="utf-8").strip() == token:
                return True
    except OSError:
        return False
    return False


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no advisory lock; a second run is not detected
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True
