"""Store errors name the path and the fix; hostile session ids give one clean line from every command.

Before: a read-only sessions dir gave sqlite's "unable to open database file" with no path, a full disk a
bare OSError, a 5,000-character id a 5,000-character error, and an id with rich markup was mangled.
"""

from __future__ import annotations

import errno
import os

import pytest

from promptomatix.cli.app import main
from promptomatix.errors import SessionError
from promptomatix.lm.cache import ResponseCache
from promptomatix.sessions import add_feedback
from promptomatix.sessions import fs as store_fs

WRITABLE = "pass --sessions-dir DIR or set PROMPTOMATIX_SESSIONS_DIR to a writable folder"


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def _raise(code: int, text: str):
    def boom(*args, **kwargs):
        raise OSError(code, text, str(args[0]) if args and isinstance(args[0], str | os.PathLike) else None)

    return boom


@pytest.mark.parametrize("code, words", [(errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied")])
def test_unwritable_store_names_the_path_and_the_fix(store, monkeypatch, code, words):
    monkeypatch.setattr(os, "mkdir", _raise(code, os.strerror(code)))
    with pytest.raises(SessionError) as exc:
        store.new_session(raw_input="x")
    assert f"cannot create {store_fs.display(store.root)}: {words}" in str(exc.value)
    assert exc.value.hint == WRITABLE


def test_unwritable_session_file_through_the_cli(store, sid, monkeypatch, capsys):
    monkeypatch.setattr(store_fs.tempfile, "mkstemp", _raise(errno.EROFS, "Read-only file system"))
    code, _, err = _cli(capsys, "feedback", "add", sid, "--comment", "shorter", "--sessions-dir", str(store.root))
    assert code == 1
    assert "cannot write" in err and "session.json: read-only file system" in err and "--sessions-dir DIR" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


class _FullDisk:
    """A file handle whose data never fits: write raises ENOSPC like a full disk."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self._fd)

    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_disk_full_keeps_the_previous_file(store, sid, monkeypatch, where):
    path = store.session_file(sid)
    before = path.read_bytes()
    if where == "write":
        monkeypatch.setattr(store_fs.os, "fdopen", lambda fd, *a, **k: _FullDisk(fd))
    else:
        monkeypatch.setattr(store_fs.os, "fsync", _raise(errno.ENOSPC, "No space left on device"))
    with pytest.raises(SessionError) as exc:
        add_feedback(store, sid, comment="shorter")
    monkeypatch.undo()
    message = str(exc.value)
    assert store_fs.display(path) in message and "the disk is full" in message and "left intact" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")) == []
    assert store.load(sid).feedback == []


def test_a_corrupt_session_can_be_deleted_as_its_error_advises(store, sid, capsys):
    path = store.session_file(sid)
    path.write_text(path.read_text()[:200])  # truncated mid-write
    code, _, err = _cli(capsys, "sessions", "show", sid, "--sessions-dir", str(store.root))
    assert code == 1 and "is corrupt" in err and f"promptomatix sessions delete {sid}" in err
    main(["sessions", "delete", sid, "--yes", "--sessions-dir", str(store.root)])  # returns: exit code 0
    assert f"deleted {sid}" in capsys.readouterr().out and not store.session_dir(sid).exists()
    code, _, err = _cli(capsys, "sessions", "delete", "20990101-000000-abcdef", "--yes", "--sessions-dir",
                        str(store.root))  # fmt: skip
    assert code == 1 and "no session" in err


def test_delete_on_a_read_only_store(store, sid, monkeypatch, capsys):
    monkeypatch.setattr("shutil.rmtree", _raise(errno.EROFS, "Read-only file system"))
    code, _, err = _cli(capsys, "sessions", "delete", sid, "--yes", "--sessions-dir", str(store.root))
    assert code == 1 and "cannot delete" in err and "read-only file system" in err and "Traceback" not in err


def test_unopenable_response_cache_names_its_path(tmp_path):
    target = tmp_path / "s1" / "cache.sqlite"
    target.mkdir(parents=True)  # a directory where the database file should be
    with pytest.raises(SessionError, match=rf"cannot open the response cache {target}: unable to open"):
        ResponseCache(target)


def test_sessions_dir_that_is_a_file(tmp_path, capsys):
    not_dir = tmp_path / "file"
    not_dir.write_text("x")
    code, _, err = _cli(capsys, "sessions", "list", "--sessions-dir", str(not_dir))
    assert code == 1 and "is not a directory" in err


BAD_IDS = [
    "../x",
    "../../etc",
    "/etc/passwd",
    "a/b",
    "..",
    "x" * 5000,
    "é",
    "ｓｅｓｓｉｏｎ",
    "a\x00b",
    "a[bold]x[/]",
    "abc\n",
    "\udcff\udcfe",
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
@pytest.mark.parametrize(
    "command",
    [
        ["sessions", "show"],
        ["sessions", "export"],
        ["sessions", "delete", "--yes"],
        ["feedback", "add", "--comment", "c"],
        ["feedback", "list"],
        ["feedback", "dismiss", "fb1"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_hostile_ids_give_one_clean_line(store, capsys, command, bad):
    args = [*command[:2], bad, *command[2:], "--sessions-dir", str(store.root)]
    code, out, err = _cli(capsys, *args)
    assert code in (1, 2)
    assert "Traceback" not in err and out == ""
    assert len(err.strip().splitlines()) == 1 and len(err) < 300
    assert "invalid session id" in err
    if "[bold]" in bad:
        assert "a[bold]x[/]" in err  # printed as given, not eaten as markup
    assert not (store.root.parent / "x").exists()
