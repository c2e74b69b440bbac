"""The boundary's response cache: SQLite in the run's directory, so a resumed run replays its own calls for free.

Keys hash the model, messages, schema and sampling settings, plus the occurrence number of an identical request
within the run when sampling is on (temperature > 0): the k-th identical sampled request replays the k-th answer,
so resuming is exact while repeated samples in one run still differ.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


def request_key(model: str, payload: dict[str, Any]) -> str:
    blob = json.dumps({"model": model, **payload}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """A thread-safe key → JSON store. `path=None` keeps it in memory (one run, no resume)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path) if self.path else ":memory:", check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # no fsync per put (about 4 ms each, under the lock every call takes): in WAL mode a commit still
            # survives a crash or a kill of the process, only a power loss may drop the last answers (re-paid)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.commit()
            # the keys (and the answers read or written by this run) held in memory: a get takes no lock, where
            # every call used to queue behind the other threads' puts (10 ms a call with DSPy's threads busy)
            self._keys = {k for (k,) in self._db.execute("SELECT key FROM responses")}
            self._mem: dict[str, str] = {}
        except sqlite3.Error as e:  # sqlite names no path ("unable to open database file"); we do
            from promptomatix.errors import SessionError
            from promptomatix.sessions.fs import WRITABLE_HINT

            raise SessionError(f"cannot open the response cache {self.path}: {e}", hint=WRITABLE_HINT) from e

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer (written by this run or one before it on the same file), or None."""
        if key not in self._keys:
            return None
        text = self._mem.get(key)
        if text is None:
            with self._lock:
                row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            text = self._mem[key] = row[0]
        return json.loads(text)

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, text))
            self._db.commit()
            self._mem[key] = text
            self._keys.add(key)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
