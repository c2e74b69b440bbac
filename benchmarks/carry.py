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

from promptomatix.lm.cache import ResponseCache, request_key

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


class ReplayClient:
    """A model client that answers from an earlier attempt first and stores every answer the model gives.

    Its keys are the LM boundary's cache keys (occurrence-numbered when sampling), so the session cache of a run
    cut off before this harness existed seeds it as well. The keying is written here, not imported from the
    boundary: the harness also runs on branch `suite-8200c68-carry`, whose boundary has no shared key helper. Behind the client, the run counts a replayed answer as a
    call with its tokens, as the uninterrupted run counted it."""

    def __init__(self, inner: Any, cache: ReplayCache) -> None:
        self.inner, self.cache, self.model = inner, cache, inner.model
        self._occurrences: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:  # worst_cost, n_parallel, ...: the model's own
        return getattr(self.inner, name)

    def complete(self, messages: list[dict[str, str]], *, json_schema: dict[str, Any] | None = None,
                 max_tokens: int | None = None, temperature: float | None = None) -> Any:  # fmt: skip
        from promptomatix.lm.types import Completion

        payload = {"messages": messages, "json_schema": json_schema, "max_tokens": max_tokens,
                   "temperature": temperature}  # fmt: skip
        n = 0
        if temperature and temperature > 0:
            base = request_key(self.model, payload)
            with self._lock:
                n = self._occurrences.get(base, 0)
                self._occurrences[base] = n + 1
        key = request_key(self.model, {**payload, "occurrence": n})
        hit = self.cache.get(key)
        if hit is not None:
            return Completion(**hit)
        result = self.inner.complete(messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature)
        self.cache.put(key, result.__dict__)
        return result


def replay_clients(model: str, teacher_model: str | None, n_parallel: int, part_dir: Path,
                   make: Any = None) -> tuple[dict[str, ReplayClient], ReplayCache]:  # fmt: skip
    """The run's clients (`make(model_string)`, by default the model the string names) behind one replay cache."""
    from promptomatix.lm.factory import create_client

    cache = ReplayCache(part_dir / "replay.sqlite")
    make = make or (lambda m: create_client(m, n_parallel=n_parallel))
    clients = {"task": ReplayClient(make(model), cache)}
    if teacher_model:
        clients["teacher"] = ReplayClient(make(teacher_model), cache)
    return clients, cache


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


def seed_from(session_cache: Path, part_dir: Path) -> int:
    """Seed a part's replay cache with the session cache of an attempt cut off before this harness existed (a
    consistent copy through sqlite's backup, which reads the write-ahead log too). Returns the answers it holds."""
    import sqlite3

    part_dir.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(session_cache), sqlite3.connect(part_dir / "replay.sqlite")
    try:
        src.backup(dst)
        return int(dst.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    finally:
        src.close()
        dst.close()


def forget(part_dir: Path) -> None:
    """Remove a finished part's caches: its JSON is the record, and a re-run must start afresh."""
    shutil.rmtree(part_dir, ignore_errors=True)


def save_parts(parts_dir: Path, dest: Path, finished: set[str]) -> list[str]:
    """Copy every unfinished part's caches (`parts_dir/<part>/`) to `dest/<part>/`, to be committed.

    A session's machine may not be the next one's: `benchmarks/.cache/` is not in the repository, so a part cut off
    by a session's end lost what it had paid for (two parts, 1.5 hours, at the start of session 15). Each SQLite file
    is copied through sqlite's backup (a consistent copy with its write-ahead log, while the part still writes it).
    Returns the parts saved; a part saved earlier is replaced, and removed once its JSON exists (`finished`)."""
    import sqlite3

    for old in [p for p in dest.glob("*") if p.is_dir() and p.name in finished] if dest.is_dir() else []:
        shutil.rmtree(old)
    saved = []
    for part in sorted(p for p in parts_dir.glob("*") if p.is_dir()) if parts_dir.is_dir() else []:
        out = dest / part.name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for db in part.glob("*.sqlite"):
            src, dst = sqlite3.connect(db), sqlite3.connect(out / db.name)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
        if (part / "attempts.json").exists():
            shutil.copyfile(part / "attempts.json", out / "attempts.json")
        saved.append(part.name)
    return saved


def restore_parts(src: Path, parts_dir: Path) -> list[str]:
    """Copy saved parts (`save_parts`) back under `parts_dir`, for the same command to replay them. A part whose
    directory exists here already is left alone: this machine's copy is at least as far along."""
    restored = []
    for part in sorted(p for p in src.glob("*") if p.is_dir()) if src.is_dir() else []:
        target = parts_dir / part.name
        if target.exists():
            continue
        shutil.copytree(part, target)
        restored.append(part.name)
    return restored
