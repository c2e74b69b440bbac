"""A suite part that a session end cuts off carries over to the next attempt instead of starting again.

A peer part on squad takes 2-4 hours here, longer than a session can give it. Its calls go through a response
cache on disk (one per part), so a second attempt replays the first one's answers and pays only for the calls the
first never made. What the part reports stays what one uninterrupted run would: a replayed answer was a real call
of an earlier attempt, so it counts as a call (with its tokens), not as a cache hit; the wall time is the sum of
the attempts' (each attempt records its elapsed time every half minute, so a kill loses at most that much).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from promptomatix.lm.cache import ResponseCache

HEARTBEAT_S = 30.0


class ReplayCache(ResponseCache):
    """A ResponseCache that counts the answers an earlier attempt stored and this one replays.

    Only the first hit on such a key counts: a repeat of it within this attempt would have been a cache hit of
    the earlier attempt as well."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._earlier = set(self._keys)
        self._replayed: set[str] = set()
        self.replayed_tokens = 0

    @property
    def replayed(self) -> int:
        return len(self._replayed)

    def get(self, key: str) -> dict[str, Any] | None:
        hit = super().get(key)
        if hit is not None and key in self._earlier:
            with self._lock:
                if key not in self._replayed:
                    self._replayed.add(key)
                    self.replayed_tokens += int(hit.get("prompt_tokens", 0)) + int(hit.get("completion_tokens", 0))
        return hit


class Attempts:
    """The wall time of each attempt at one part, kept in `attempts.json` beside its caches."""

    def __init__(self, part_dir: Path) -> None:
        self.path = part_dir / "attempts.json"
        part_dir.mkdir(parents=True, exist_ok=True)
        self.earlier: list[float] = self._read()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="suite-attempt-heartbeat", daemon=True)

    def _read(self) -> list[float]:
        if not self.path.exists():
            return []
        return [float(a["elapsed_s"]) for a in json.loads(self.path.read_text(encoding="utf-8"))["attempts"]]

    def _write(self) -> None:
        doc = {"attempts": [{"elapsed_s": s} for s in [*self.earlier, round(time.monotonic() - self._t0, 1)]]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self._write()

    def __enter__(self) -> Attempts:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._write()

    @property
    def number(self) -> int:
        """This attempt's number, 1 for a part that starts afresh."""
        return len(self.earlier) + 1


def replays(boundary: Any) -> tuple[int, int]:
    """(calls, tokens) that a boundary's cache replayed from earlier attempts; (0, 0) for a plain cache."""
    cache = boundary.cache
    return (cache.replayed, cache.replayed_tokens) if isinstance(cache, ReplayCache) else (0, 0)


def with_attempts(row: dict[str, Any], attempts: Attempts, replayed: int) -> dict[str, Any]:
    """The row with the earlier attempts' wall time added, and what was carried over (nothing on a first one)."""
    if attempts.number == 1:
        return row
    earlier = round(sum(attempts.earlier), 1)
    return {**row, "time_s": round(float(row.get("time_s") or 0.0) + earlier, 2),
            "carried": {"attempts": attempts.number, "replayed_calls": replayed, "earlier_s": earlier}}  # fmt: skip


def forget(part_dir: Path) -> None:
    """Remove a finished part's caches: its JSON is the record, and a re-run must start afresh."""
    shutil.rmtree(part_dir, ignore_errors=True)
