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

#: the largest answer kept (JSON characters): a call asked for a few hundred tokens, so a bigger answer comes from
#: a broken server (five 20 MB answers made a 115 MB cache file) and is used once, never stored
MAX_CACHED_CHARS = 1_000_000
#: answers that end for these reasons are cut short by the provider, not by the request (see `cacheable`)
_PARTIAL = ("content_filter",)


def cacheable(result: Any, temperature: float | None) -> bool:
    """Whether an answer may be replayed to later identical requests (this run, a resume, a refine).

    Not an empty answer (`content: null` or ""): a replay would give every later run the same nothing. Not one the
    provider cut short for its own reasons (`content_filter`). An answer cut at max_tokens (`length`) is kept when
    the request was greedy (temperature 0): the same request is cut at the same place again, so asking again
    would pay for the same text. A sampled request cut short is not kept: another sample may well finish, and
    the sampled answer is one of many, so the run loses nothing by drawing again.
    """
    if not getattr(result, "text", ""):
        return False
    reason = getattr(result, "finish_reason", None)
    if reason in _PARTIAL:
        return False
    return not (reason == "length" and (temperature or 0.0) > 0)


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

    def put(self, key: str, value: dict[str, Any]) -> bool:
        """Store an answer; False (nothing stored) when it is larger than MAX_CACHED_CHARS."""
        text = json.dumps(value)
        if len(text) > MAX_CACHED_CHARS:
            return False
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, text))
            self._db.commit()
            self._mem[key] = text
            self._keys.add(key)
        return True

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
