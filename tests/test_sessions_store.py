"""Session store: round trip, unreadable files kept, atomic writes, locking, ids, list, export."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.sessions import (
    SCHEMA_VERSION,
    Score,
    Session,
    SessionStore,
    TestScore,
    Usage,
    add_feedback,
    new_id,
    validate_id,
)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "store")


def _full_session(store: SessionStore) -> Session:
    s = store.new_session(
        raw_input="Classify the sentiment of a review",
        description="sentiment",
        task_spec={"task_type": "classification", "input_fields": ["text"], "output_fields": ["label"]},
        data={"train": [{"text": "great", "label": "pos"}], "valid": [{"text": "bad", "label": "neg"}]},
        data_report={"n_train": 1, "n_valid": 1},
        run_config={"backend": "dspy", "model": "local/qwen", "temperature": 0.0},
    )
    s.status = "running"
    s.progress = {"round": 2, "candidates": 5, "best": 0.8}
    s.add_version("Classify.", backend="initial", valid=Score(raw=0.5, penalized=0.49))
    s.add_version(
        "Classify the sentiment as pos or neg.",
        backend="dspy",
        instructions="Classify the sentiment as pos or neg.",
        demos=[{"text": "great", "label": "pos"}],
        settings={"optimizer": "MIPROv2", "auto": "light"},
        valid=Score(raw=0.9, penalized=0.85),
        test=TestScore(mean=0.8, ci_low=0.7, ci_high=0.9, n=50),
        initial_valid=Score(raw=0.5, penalized=0.49),
        usage=Usage(calls=12, cached_calls=2, prompt_tokens=1000, completion_tokens=200, cost_usd=None, seconds=3.5),
        duration_s=3.6,
        program_json={"predict": {"demos": [], "signature": {"instructions": "x"}}},
        candidates=[{"instructions": "a", "valid": 0.7}, {"instructions": "b", "valid": 0.9}],
    )
    s.add_event("run_started", backend="dspy")
    store.save(s)
    return s


def test_round_trip_equality(store):
    s = _full_session(store)
    loaded = store.load(s.session_id)
    assert loaded == s
    assert loaded.versions[1].parent == 1 and loaded.versions[1].usage.cost_usd is None
    raw = store.session_file(s.session_id).read_text()
    doc = json.loads(raw)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert raw.startswith("{\n  ")  # indented, human-readable
    loaded.status = "completed"
    store.save(loaded)
    again = store.load(s.session_id)
    assert again.status == "completed" and again.revision == s.revision + 1


def test_update_records_progress_and_status(store):
    s = store.new_session(raw_input="x")

    def step(sess: Session) -> None:
        sess.status = "interrupted"
        sess.progress["round"] = 3

    store.update(s.session_id, step)
    loaded = store.load(s.session_id)
    assert loaded.status == "interrupted" and loaded.progress == {"round": 3}


def test_stale_save_is_refused(store):
    s = store.new_session(raw_input="x")
    a = store.load(s.session_id)
    b = store.load(s.session_id)
    a.progress = {"by": "a"}
    store.save(a)
    b.progress = {"by": "b"}
    with pytest.raises(SessionError, match="changed by another process"):
        store.save(b)
    assert store.load(s.session_id).progress == {"by": "a"}
    store.save(b, force=True)
    assert store.load(s.session_id).progress == {"by": "b"}


def _assert_untouched(store: SessionStore, session_id: str, before: bytes, match: str) -> None:
    path = store.session_file(session_id)
    with pytest.raises(SessionError, match=match):
        store.load(session_id)
    with pytest.raises(SessionError, match=match):
        store.save(Session(session_id=session_id), force=True)
    with pytest.raises(SessionError, match=match):
        store.update(session_id, lambda sess: None)
    with pytest.raises(SessionError):
        store.create(Session(session_id=session_id))
    assert path.read_bytes() == before


def test_newer_schema_is_reported_and_never_overwritten(store):
    s = store.new_session(raw_input="x")
    path = store.session_file(s.session_id)
    doc = json.loads(path.read_text())
    doc["schema_version"] = SCHEMA_VERSION + 1
    doc["new_field"] = {"from": "the future"}
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    with pytest.raises(SessionError, match=r"newer Promptomatix.*upgrade"):
        store.load(s.session_id)
    _assert_untouched(store, s.session_id, before, "newer Promptomatix")


def test_corrupt_file_is_reported_and_never_overwritten(store):
    s = store.new_session(raw_input="x")
    path = store.session_file(s.session_id)
    path.write_text('{\n  "schema_version": 1,\n  "session_id": oops\n}\n')
    before = path.read_bytes()
    with pytest.raises(SessionError) as info:
        store.load(s.session_id)
    msg = str(info.value)
    assert f"{s.session_id}/session.json is corrupt (line 3)" in msg and "left untouched" in msg
    _assert_untouched(store, s.session_id, before, "is corrupt")


@pytest.mark.parametrize(
    "content, where",
    [
        ('{"schema_version": 1, "session_id": "X", "versions": "nope"}', "versions"),
        ("[1, 2]", "not a JSON object"),
        ('{"session_id": "x"}', "schema_version"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_invalid_content_is_corrupt(store, content, where):
    s = store.new_session(raw_input="x")
    path = store.session_file(s.session_id)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SessionError, match=where):
        store.load(s.session_id)


@pytest.mark.parametrize("fail_at", ["replace", "fsync"])
def test_crash_during_save_keeps_previous_file(store, monkeypatch, fail_at):
    s = _full_session(store)
    path = store.session_file(s.session_id)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, fail_at, boom)
    s.status = "failed"
    s.versions[0].prompt = "changed"
    with pytest.raises(SessionError, match=r"cannot write .*session\.json: simulated crash"):
        store.save(s)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert store.load(s.session_id).status == "running"
    leftovers = sorted(p.name for p in path.parent.iterdir())
    assert leftovers == [".lock", "session.json"]


def _append_feedback(root: str, session_id: str, worker: int, n: int, barrier) -> None:
    barrier.wait(timeout=20)
    store = SessionStore(root)
    for i in range(n):
        add_feedback(store, session_id, comment=f"w{worker}-{i}")


def test_two_processes_updating_concurrently_lose_nothing(store):
    s = store.new_session(raw_input="x")
    s.add_version("Answer the question.", backend="initial")
    store.save(s)
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_append_feedback, args=(str(store.root), s.session_id, w, 20, barrier)) for w in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    items = store.load(s.session_id).feedback
    assert sorted(f.comment for f in items) == sorted(f"w{w}-{i}" for w in range(2) for i in range(20))
    assert len({f.id for f in items}) == 40


def test_new_ids_are_sortable_and_valid():
    t = datetime(2026, 11, 22, 4, 30, 12, tzinfo=timezone.utc)
    a = new_id(t)
    assert re.fullmatch(r"20261122-043012-[0-9a-f]{6}", a)
    assert validate_id(a) == a
    assert new_id(t + timedelta(seconds=1)) > a
    assert new_id(t + timedelta(days=400)) > a


@pytest.mark.parametrize(
    "bad",
    [
        "../etc",
        "..",
        ".",
        "a/b",
        "a\\b",
        "/etc/passwd",
        "C:\\x",
        "x.json",
        ".hidden",
        "",
        "a" * 65,
        "-rf",
        "nul",
    ],
)
def test_invalid_ids_are_rejected_everywhere(store, bad):
    with pytest.raises(SessionError, match=r"invalid session id .*ids look like 20261122-043012-3f9a1c"):
        validate_id(bad)
    for call in (store.load, store.session_dir, store.delete, lambda i: store.export(i, "text")):
        with pytest.raises(SessionError, match="invalid session id"):
            call(bad)
    with pytest.raises(ValidationError):
        Session(session_id=bad)


def test_session_dir_stays_inside_root(store, tmp_path):
    store.root.mkdir(parents=True)
    assert store.session_dir("abc").parent == store.root.resolve()
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SessionError, match="outside"):
        store.session_dir("evil")


def test_missing_session_names_the_list_command(store):
    with pytest.raises(SessionError, match="promptomatix sessions list"):
        store.load("20260101-000000-abcdef")
    with pytest.raises(SessionError, match=r"does not exist|no session"):
        store.save(Session(session_id="20260101-000000-abcdef"))


def test_create_refuses_existing(store):
    s = store.new_session(raw_input="x")
    with pytest.raises(SessionError, match="already exists"):
        store.create(Session(session_id=s.session_id))


def test_list_is_newest_first_and_tolerates_corrupt_files(store, caplog):
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i, sid in enumerate(["s-old", "s-new", "s-mid"]):
        offset = {"s-old": 0, "s-mid": 1, "s-new": 2}[sid]
        sess = Session(session_id=sid, created_at=base + timedelta(days=offset), raw_input=f"task {i}\nmore")
        if sid == "s-new":
            sess.add_version("p1", backend="b", valid=Score(raw=0.4))
            sess.add_version("p2", backend="b", valid=Score(raw=0.9, penalized=0.7))
            sess.add_version("p3", backend="b", valid=Score(raw=0.6))
        store.create(sess)
    bad = store.session_dir("s-bad")
    bad.mkdir()
    (bad / "session.json").write_text("{not json")
    (store.root / "stray-dir-without-file").mkdir()
    (store.root / "notes.txt").write_text("hi")
    rows = store.list()
    readable = [r for r in rows if r.readable]
    assert [r.session_id for r in readable] == ["s-new", "s-mid", "s-old"]
    assert readable[0].n_versions == 3 and readable[0].best_version == 2 and readable[0].best_score == 0.7
    assert readable[2].description == "task 0"
    broken = [r for r in rows if not r.readable]
    assert [r.session_id for r in broken] == ["s-bad"] and "corrupt" in broken[0].error
    assert "s-bad" not in caplog.text  # listed as unreadable, not also logged as "skipped"


def test_a_hand_edited_session_never_takes_the_list_down(store):
    """A `created_at` without a zone made sorting fail for every session; a verdict that does not read back
    (`"wins": "many"`) passed as valid and crashed every page showing it. Now: UTC, and a corrupt file."""
    for sid in ("s-a", "s-naive", "s-verdict"):
        sess = Session(session_id=sid, raw_input="task")
        sess.add_version("p1", backend="b", valid=Score(raw=0.4))
        store.create(sess)
    path = store.session_file("s-naive")
    data = json.loads(path.read_text())
    data["created_at"] = "2026-01-01T00:00:00"  # no zone
    path.write_text(json.dumps(data))
    path = store.session_file("s-verdict")
    data = json.loads(path.read_text())
    data["versions"][0]["verdict"] = {"outcome": "improved", "wins": "many"}
    path.write_text(json.dumps(data))
    rows = {r.session_id: r for r in store.list()}
    assert rows["s-naive"].readable and rows["s-naive"].created_at.tzinfo is not None
    assert rows["s-a"].readable and not rows["s-verdict"].readable and "corrupt" in rows["s-verdict"].error


def test_list_of_missing_root_is_empty(tmp_path):
    assert SessionStore(tmp_path / "nothing").list() == []


def test_delete(store):
    s = store.new_session(raw_input="x")
    store.delete(s.session_id)
    assert not store.session_dir(s.session_id).exists()
    with pytest.raises(SessionError, match="sessions list"):
        store.delete(s.session_id)


def test_export_formats(store):
    s = _full_session(store)
    sid = s.session_id
    assert store.export(sid, "text") == "Classify the sentiment as pos or neg."
    assert store.export(sid, "text", version=1) == "Classify."
    assert json.loads(store.export(sid, "json")) == json.loads(store.session_file(sid).read_text())
    one = json.loads(store.export(sid, "json", version=1))  # it exported the whole session, ignoring the version
    assert one["session_id"] == sid and one["version"]["version"] == 1 and one["version"]["prompt"] == "Classify."
    assert "versions" not in one and one["task_spec"] == s.task_spec
    with pytest.raises(SessionError, match="no version 7"):
        store.export(sid, "json", version=7)
    s.versions[0].demos = [{"token": "a data field named like a secret", "label": "pos"}]
    store.save(s)
    kept = json.loads(store.export(sid, "json", version=1))["version"]["demos"]
    assert kept == [{"token": "a data field named like a secret", "label": "pos"}]  # data, scrubbed as data
    assert json.loads(store.export(sid, "dspy")) == s.versions[1].program_json
    with pytest.raises(SessionError, match="no saved DSPy program"):
        store.export(sid, "dspy", version=1)
    with pytest.raises(SessionError, match="no version 7"):
        store.export(sid, "text", version=7)
    with pytest.raises(ConfigurationError, match="unknown export format"):
        store.export(sid, "yaml")  # type: ignore[arg-type]
    empty = store.new_session(raw_input="x")
    with pytest.raises(SessionError, match="no prompt versions"):
        store.export(empty.session_id, "text")


def test_default_root_from_env_or_cwd(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "env-root"))
    assert SessionStore().root == tmp_path / "env-root"
    monkeypatch.delenv("PROMPTOMATIX_SESSIONS_DIR")
    monkeypatch.chdir(tmp_path)
    assert SessionStore().root == tmp_path / "sessions"


def test_version_numbering_and_parents():
    s = Session(session_id="abc")
    assert s.latest_version() is None and s.best_version() is None
    v1 = s.add_version("a", backend="x")
    v2 = s.add_version("b", backend="x")
    v3 = s.add_version("c", backend="x", parent=1)
    assert (v1.version, v1.parent, v2.parent, v3.version, v3.parent) == (1, None, 1, 3, 1)
    with pytest.raises(SessionError, match="no version 9"):
        s.add_version("d", backend="x", parent=9)
    with pytest.raises(ValidationError):
        Session(session_id="abc", versions=[v2.model_copy(update={"version": 5}), v1])
