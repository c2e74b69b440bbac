"""A suite part cut off by a session's end carries over: the next attempt replays the calls the first one paid for
and reports what one uninterrupted run would (benchmarks/carry.py), with fake LMs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.carry import Attempts, replay_clients, seed_from, with_attempts
from benchmarks.engine import fake_clients
from benchmarks.peer import run_peer
from tests.test_bench_runner import TASK


class Cut(BaseException):
    """What a session's end is to the part: not an error it may catch."""


class CutAfter:
    """A client that answers `n` calls, then the process is gone."""

    def __init__(self, inner, n: int) -> None:
        self.inner, self.n, self.model = inner, n, inner.model

    def worst_cost(self, *args):
        return self.inner.worst_cost(*args)

    def complete(self, messages, **kw):
        if self.n <= 0:
            raise Cut()
        self.n -= 1
        return self.inner.complete(messages, **kw)


def _real_calls(clients) -> int:
    return len(clients["task"].calls) + len(clients["teacher"].calls)


def test_a_cut_off_peer_part_replays_its_calls_and_reports_an_uninterrupted_run(tmp_path: Path):
    whole = fake_clients(0.0)
    once = run_peer(TASK, model="fake/task", clients=whole, num_threads=1, part_dir=tmp_path / "once")
    paid = _real_calls(whole)
    assert once["replayed_calls"] == 0 and once["calls"] == paid

    first = fake_clients(0.0)
    with pytest.raises(Cut):
        run_peer(TASK, model="fake/task", clients={**first, "task": CutAfter(first["task"], paid // 2)},
                 num_threads=1, part_dir=tmp_path / "part")  # fmt: skip
    second = fake_clients(0.0)
    row = run_peer(TASK, model="fake/task", clients=second, num_threads=1, part_dir=tmp_path / "part")

    assert row["replayed_calls"] > 0  # the first attempt's answers were used, not paid again
    assert _real_calls(second) == paid - row["replayed_calls"]
    for key in ("calls", "cached_calls", "search_calls", "tokens", "best_prompt", "test_rows"):
        assert row[key] == once[key], key


def test_a_part_without_a_directory_keeps_its_calls_in_memory():
    row = run_peer(TASK, model="fake/task", clients=fake_clients(0.0), num_threads=1)
    assert row["replayed_calls"] == 0 and row["cached_calls"] >= 0


def test_the_wall_time_of_earlier_attempts_is_added_and_said(tmp_path: Path):
    with Attempts(tmp_path) as first:
        pass
    assert first.number == 1 and with_attempts({"time_s": 5.0}, first, 0) == {"time_s": 5.0}
    saved = json.loads((tmp_path / "attempts.json").read_text())
    saved["attempts"][0]["elapsed_s"] = 1800.0  # as the heartbeat left it when the session ended
    (tmp_path / "attempts.json").write_text(json.dumps(saved))

    with Attempts(tmp_path) as second:
        pass
    row = with_attempts({"time_s": 600.0, "calls": 90}, second, 40)
    assert row["time_s"] == 2400.0 and row["calls"] == 90
    assert row["carried"] == {"attempts": 2, "replayed_calls": 40, "earlier_s": 1800.0}
    assert len(json.loads((tmp_path / "attempts.json").read_text())["attempts"]) == 2


def _process(clients, sessions_dir: Path):
    from benchmarks.run import run_process

    return run_process(TASK, "meta", model="fake/task", teacher_model="fake/teacher", seed=0, num_threads=1,
                       max_calls=None, max_minutes=None, sessions_dir=str(sessions_dir), clients=clients,
                       log=lambda _m: None)  # fmt: skip


def test_a_cut_off_promptomatix_part_is_carried_by_its_session_cache(tmp_path: Path):
    """A part run before the harness kept answers (the running squad part) leaves its session's cache.sqlite: it
    seeds the next attempt, whose clients replay it, and the part reports what one uninterrupted run does."""
    whole = fake_clients(0.0)
    once = _process(whole, tmp_path / "once")
    paid = _real_calls(whole)

    first = fake_clients(0.0)
    with pytest.raises(Cut):
        _process({**first, "task": CutAfter(first["task"], len(whole["task"].calls) // 2)}, tmp_path / "cut")
    (session,) = (tmp_path / "cut").iterdir()
    assert seed_from(session / "cache.sqlite", tmp_path / "part") > 0

    second = fake_clients(0.0)
    clients, cache = replay_clients("fake/task", "fake/teacher", 4, tmp_path / "part",
                                    make=lambda m: second[m.removeprefix("fake/")])  # fmt: skip
    row = _process(clients, tmp_path / "again")
    assert cache.replayed > 0 and _real_calls(second) == paid - cache.replayed
    for key in ("calls", "cached_calls", "tokens", "best_prompt", "test_rows"):
        assert row[key] == once[key], key


def test_a_cut_off_part_saved_into_the_repository_carries_over_to_a_new_machine(tmp_path: Path):
    """benchmarks/.cache is not committed: a new machine lost the cut-off parts' answers and they started again.
    Saved (`suite carry save`) and restored on the next machine (`suite carry restore`), they replay."""
    from benchmarks.carry import restore_parts, save_parts

    whole = fake_clients(0.0)
    once = run_peer(TASK, model="fake/task", clients=whole, num_threads=1, part_dir=tmp_path / "once")
    paid = _real_calls(whole)
    parts, repo = tmp_path / "machine1" / "parts", tmp_path / "repo" / "carry"
    first = fake_clients(0.0)
    with Attempts(parts / "squad-s2-peer"), pytest.raises(Cut):  # as the suite runs a part
        run_peer(TASK, model="fake/task", clients={**first, "task": CutAfter(first["task"], paid // 2)},
                 num_threads=1, part_dir=parts / "squad-s2-peer")  # fmt: skip
    assert save_parts(parts, repo, finished={"squad-s1-peer"}) == ["squad-s2-peer"]
    assert not list(repo.rglob("*-wal")) and (repo / "squad-s2-peer" / "attempts.json").exists()

    fresh = tmp_path / "machine2" / "parts"
    assert restore_parts(repo, fresh) == ["squad-s2-peer"] and restore_parts(repo, fresh) == []
    second = fake_clients(0.0)
    with Attempts(fresh / "squad-s2-peer") as attempt:
        row = run_peer(TASK, model="fake/task", clients=second, num_threads=1, part_dir=fresh / "squad-s2-peer")
    assert row["replayed_calls"] > 0 and _real_calls(second) == paid - row["replayed_calls"]
    assert attempt.number == 2 and row["calls"] == once["calls"]
    assert save_parts(tmp_path / "none", repo, finished={"squad-s2-peer"}) == [] and not list(repo.iterdir())
