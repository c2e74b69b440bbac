"""Review 20, findings 3, 4, 9 and 10: the session store's lock files, delete on a full disk, unreadable
sessions in `sessions list`, and session entries that are symlinks.

Before: a `.run.lock` symlink made `sessions delete` truncate the file it pointed to (outside the store) and
a `.lock` symlink made `feedback add` create one; `sessions delete` was refused on a full disk because the run
lock's owner record could not be written (its hint: free some space); `sessions list` logged "skipping
unreadable session …" and listed it anyway; a session entry that is a symlink could not be deleted (and a
link to another session deleted that session).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import threading

import pytest

from promptomatix.errors import SessionError
from promptomatix.sessions import SessionStore, add_feedback, runlock
from promptomatix.sessions.runlock import RUN_LOCK_FILE
from promptomatix.sessions.store import LOCK_FILE
from tests.cli_run import run_main as _cli

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symlinks, FIFOs and flock are POSIX here")
PRECIOUS = "precious user data\nline 2\n"


@pytest.fixture
def victim(tmp_path):
    """A user's file outside the sessions store."""
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "victim.txt"
    path.write_text(PRECIOUS)
    return path




def _plant_link(store: SessionStore, sid: str, name: str, target) -> None:
    lock = store.session_dir(sid) / name
    lock.unlink(missing_ok=True)
    lock.symlink_to(target)


# --- 3. lock files are never followed ---------------------------------------------------------------------------


@posix_only
def test_delete_never_truncates_the_file_a_run_lock_symlink_points_to(store, sid, victim):
    _plant_link(store, sid, RUN_LOCK_FILE, victim)
    store.delete(sid)
    assert victim.read_text() == PRECIOUS
    assert not (store.root / sid).exists()


@posix_only
def test_a_run_never_writes_through_a_run_lock_symlink(store, sid, victim):
    _plant_link(store, sid, RUN_LOCK_FILE, victim)
    with store.run_lock(sid, command="refine") as owner:
        assert victim.read_text() == PRECIOUS
        lock = store.session_dir(sid) / RUN_LOCK_FILE
        assert not lock.is_symlink() and lock.is_file()  # the link was replaced by a lock file of our own
        assert json.loads(lock.read_text())["pid"] == owner["pid"] == os.getpid()
    assert victim.read_text() == PRECIOUS


@posix_only
def test_feedback_add_never_creates_a_file_where_a_lock_symlink_points(store, sid, tmp_path):
    created = tmp_path / "created-outside"
    _plant_link(store, sid, LOCK_FILE, created)
    add_feedback(store, sid, comment="be shorter")
    assert not created.exists()
    assert [f.comment for f in store.load(sid).feedback] == ["be shorter"]
    assert not (store.session_dir(sid) / LOCK_FILE).is_symlink()


@posix_only
def test_a_hard_linked_run_lock_is_locked_but_never_written(store, sid, victim):
    lock = store.session_dir(sid) / RUN_LOCK_FILE
    lock.unlink(missing_ok=True)
    os.link(victim, lock)
    with store.run_lock(sid, command="resume"):
        assert victim.read_text() == PRECIOUS
    store.delete(sid)
    assert victim.read_text() == PRECIOUS


@posix_only
def test_a_lock_path_that_is_a_directory_is_refused_in_one_line_naming_the_fix(store, sid):
    (store.session_dir(sid) / RUN_LOCK_FILE).unlink(missing_ok=True)
    (store.session_dir(sid) / RUN_LOCK_FILE).mkdir()
    with pytest.raises(SessionError) as info, store.run_lock(sid, command="resume"):
        pass
    message = str(info.value)
    assert RUN_LOCK_FILE in message and "not a regular file" in message and "rm -r" in message
    assert "\n" not in message


@posix_only
def test_probing_a_run_lock_that_is_a_fifo_does_not_hang(store, sid):
    """`sessions list` probes every session's run lock; opening a FIFO read-only blocked until a writer came."""
    lock = store.session_dir(sid) / RUN_LOCK_FILE
    lock.unlink(missing_ok=True)
    os.mkfifo(lock)
    answers: list[object] = []
    probe = threading.Thread(target=lambda: answers.append(store.live_run(sid)), daemon=True)
    probe.start()
    probe.join(5.0)
    try:
        assert not probe.is_alive(), "live_run hung on a FIFO .run.lock"
        assert answers == [None]
    finally:
        if probe.is_alive():  # unblock the stuck open so the thread ends
            os.close(os.open(lock, os.O_WRONLY | os.O_NONBLOCK))
            probe.join(5.0)


# --- 4. delete on a full disk -----------------------------------------------------------------------------------


def _disk_full(monkeypatch) -> None:
    """The owner record's write fails as it does on a full disk (os.write raising ENOSPC)."""
    real = runlock._write_owner

    def write_owner(fd: int, owner):
        if owner is not None:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, owner)

    monkeypatch.setattr(runlock, "_write_owner", write_owner)


def test_delete_works_on_a_full_disk(store, sid, monkeypatch, capsys):
    _disk_full(monkeypatch)
    code, out, err = _cli(capsys, "sessions", "delete", sid, "--yes", "--sessions-dir", str(store.root))
    assert (code, err) == (0, "") and f"deleted {sid}" in out
    assert not (store.root / sid).exists()


@posix_only
def test_delete_on_a_full_disk_still_refuses_a_session_a_live_run_holds(store, sid, monkeypatch):
    import fcntl

    _disk_full(monkeypatch)
    fd = os.open(store.session_dir(sid) / RUN_LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open file description: as another process
        os.write(fd, json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "command": "resume"}).encode())
        with pytest.raises(SessionError, match="is busy"):
            store.delete(sid)
    finally:
        os.close(fd)
    assert store.exists(sid)


def test_a_run_on_a_full_disk_still_stops_at_once_naming_the_fix(store, sid, monkeypatch):
    """Only delete lets the owner record go: a run would fail later saving its result, after paying for it."""
    _disk_full(monkeypatch)
    with pytest.raises(SessionError, match="the disk is full"), store.run_lock(sid, command="resume"):
        pass


# --- 9. unreadable sessions are listed, not "skipped" -----------------------------------------------------------


def test_list_shows_an_unreadable_session_without_a_contradicting_warning(store, sid, caplog):
    path = store.session_file(sid)
    path.write_text(path.read_text()[:200])  # truncated mid-write
    with caplog.at_level(logging.DEBUG):
        rows = store.list()
    assert [(r.session_id, r.readable) for r in rows] == [(sid, False)]
    assert "is corrupt" in rows[0].error and f"promptomatix sessions delete {sid}" in rows[0].error
    assert "skipping" not in caplog.text and sid not in caplog.text


def test_the_list_says_where_to_read_why_a_session_is_unreadable(store, sid, capsys):
    """The row cuts the reason off at 60 characters, before its fix."""
    path = store.session_file(sid)
    path.write_text(path.read_text()[:200])
    code, out, _ = _cli(capsys, "sessions", "list", "--sessions-dir", str(store.root))
    assert code == 0 and "1 unreadable: `promptomatix sessions show ID` says why" in out


# --- 10. a session entry that is a symlink ----------------------------------------------------------------------


@pytest.fixture
def linked(store, sid, tmp_path):
    """Session `sid` moved outside the store, with a symlink left in its place."""
    outside = tmp_path / "outside2"
    outside.mkdir()
    target = outside / sid
    (store.root / sid).rename(target)
    (store.root / sid).symlink_to(target, target_is_directory=True)
    return target


@posix_only
def test_delete_of_a_symlinked_entry_removes_the_link_only(store, sid, linked, capsys):
    before = sorted(p.name for p in linked.iterdir())
    code, out, err = _cli(capsys, "sessions", "delete", sid, "--yes", "--sessions-dir", str(store.root))
    assert (code, err) == (0, "") and f"deleted {sid}" in out
    assert not os.path.lexists(store.root / sid)
    assert sorted(p.name for p in linked.iterdir()) == before and (linked / "session.json").is_file()


@posix_only
def test_a_symlinked_entry_is_listed_and_refused_naming_the_fix(store, sid, linked):
    rows = store.list()
    assert [(r.session_id, r.readable) for r in rows] == [(sid, False)]
    with pytest.raises(SessionError) as info:
        store.load(sid)
    message = str(info.value)
    assert "symbolic link" in message and f"promptomatix sessions delete {sid}" in message
    assert "link only" in message and rows[0].error == message


@posix_only
def test_delete_of_a_link_to_another_session_keeps_that_session(store, sid):
    alias = "alias-of-it"
    (store.root / alias).symlink_to(store.root / sid, target_is_directory=True)
    store.delete(alias)
    assert not os.path.lexists(store.root / alias)
    assert store.load(sid).versions[0].prompt == "Classify the review."


@posix_only
def test_delete_of_a_dangling_symlinked_entry(store, tmp_path):
    store.root.mkdir(parents=True)
    (store.root / "gone-elsewhere").symlink_to(tmp_path / "nowhere", target_is_directory=True)
    store.delete("gone-elsewhere")
    assert not os.path.lexists(store.root / "gone-elsewhere") and not (tmp_path / "nowhere").exists()


@posix_only
def test_the_web_ui_deletes_a_symlinked_entry_too(store, sid, linked):
    """Its delete page answered 409 with the same refusal."""
    pytest.importorskip("starlette")
    pytest.importorskip("multipart")
    from starlette.testclient import TestClient

    from promptomatix.ui.app import create_app
    from promptomatix.ui.security import cookie_name, csrf_for
    from tests.ui_support import TOKEN

    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as client:
        client.cookies.set(cookie_name(TOKEN), TOKEN)
        page = client.get(f"/s/{sid}/delete")
        assert page.status_code == 200 and "symbolic link" in page.text
        r = client.post(f"/s/{sid}/delete", data={"csrf": csrf_for(TOKEN), "confirm": sid})
        assert r.status_code == 303 and r.headers["location"] == "/"
    assert not os.path.lexists(store.root / sid) and (linked / "session.json").is_file()
