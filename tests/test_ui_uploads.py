"""Data files uploaded with the web UI's new-run form: owner-only, removed with the session that recorded them (from
the page and from `promptomatix sessions delete`, a corrupt session too) or with a run that failed before it made a
session, never a user's own file; and the form's own errors (a field named twice, a file named ".csv")."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")

from promptomatix.errors import ConfigurationError
from promptomatix.sessions import SessionStore
from promptomatix.ui.app import create_app
from promptomatix.ui.security import cookie_name, csrf_for
from tests.test_ui_runs import client_for, csv_bytes, finished
from tests.ui_support import TASK, TOKEN

CSRF = csrf_for(TOKEN)
FORM = {"csrf": CSRF, "task": TASK, "input_fields": "review", "output_fields": "label", "synthetic_data_size": "0"}


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def uploads(store: SessionStore) -> list[str]:
    folder = store.root / ".uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def run_from_the_form(c, name: str = "reviews.csv", **form: str) -> dict:
    r = c.post("/new", data={**FORM, **form}, files={"data": (name, csv_bytes(), "text/csv")})
    assert r.status_code == 303, r.text
    return finished(c, r.headers["location"].rsplit("/", 1)[1])


def test_an_upload_is_owner_only_and_deleted_with_its_session(store):
    with client_for(store) as c:
        snap = run_from_the_form(c)
        assert snap["status"] == "done", snap["message"]
        sid = snap["session_id"]
        path = store.root / ".uploads" / uploads(store)[0]
        assert store.load(sid).run_config["data"] == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a full copy of the user's data, like session.json
        assert c.post(f"/s/{sid}/delete", data={"csrf": CSRF, "confirm": sid}).status_code == 303
    assert not store.exists(sid) and uploads(store) == []


def test_cli_delete_removes_the_upload_of_a_corrupt_session_too(store):
    with client_for(store) as c:
        first, second = run_from_the_form(c)["session_id"], run_from_the_form(c)["session_id"]
    assert len(uploads(store)) == 2
    kept = store.load(second).run_config["data"]
    broken = store.session_file(first)
    broken.write_text(broken.read_text()[:-40])  # cut short: no longer JSON
    code = f"from promptomatix.cli.app import main; main(['sessions', 'delete', {first!r}, '--yes'])"
    env = {**os.environ, "PROMPTOMATIX_SESSIONS_DIR": str(store.root)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert not store.session_dir(first).exists() and uploads(store) == [kept.rsplit("/", 1)[1]]


def test_a_users_own_data_file_is_never_deleted(store, tmp_path):
    mine = tmp_path / "mine.csv"
    in_uploads = store.root / ".uploads" / "reviews-0123abcd.csv.bak"  # not a name the UI writes
    in_uploads.parent.mkdir(parents=True)
    for path in (mine, in_uploads):
        path.write_bytes(csv_bytes())
        s = store.new_session(description="run from the command line")
        s.run_config = {"data": str(path)}
        store.save(s)
        store.delete(s.session_id)
        assert path.exists()


def test_a_job_that_fails_before_making_a_session_removes_its_upload(store):
    def no_models():
        raise ConfigurationError("no API key for the task model")

    app = create_app(store, token=TOKEN, clients=no_models)
    from starlette.testclient import TestClient

    with TestClient(app, follow_redirects=False) as c:
        c.cookies.set(cookie_name(TOKEN), TOKEN)
        snap = run_from_the_form(c)
    assert snap["status"] == "failed" and "no API key" in snap["message"]
    assert store.list() == [] and uploads(store) == []


def test_a_column_the_data_lacks_is_refused_before_a_session_and_the_upload_goes(store):
    """A wrong column is a wrong command line: refused before the session opens (it was a failed session)."""
    with client_for(store) as c:
        snap = run_from_the_form(c, output_fields="verdict")
    assert snap["status"] == "failed" and "verdict" in snap["message"] and snap["session_id"] is None
    assert store.list() == [] and uploads(store) == []


def test_a_job_that_fails_in_its_session_keeps_the_upload_for_resume_until_deleted(store):
    from promptomatix.lm.fake import FakeLM
    from tests.ui_support import fake_clients

    def down(messages):
        raise ConnectionError("the model server went away")

    broken = lambda: {**fake_clients(0.0), "task": FakeLM(default=down, model="fake/task")}  # noqa: E731
    with client_for(store, clients=broken) as c:
        snap = run_from_the_form(c)  # the task model fails once the session holds the data
        assert snap["status"] == "failed"
        sid = snap["session_id"]  # the job links its failed session (it said none)
        assert store.load(sid).status == "failed" and len(uploads(store)) == 1
        assert c.post(f"/s/{sid}/delete", data={"csrf": CSRF, "confirm": sid}).status_code == 303
    assert uploads(store) == []


def test_an_upload_named_dot_csv_is_a_csv(store):
    with client_for(store) as c:
        snap = run_from_the_form(c, name=".csv")
    assert snap["status"] == "done", snap["message"]
    assert uploads(store)[0].startswith("data-") and uploads(store)[0].endswith(".csv")


@pytest.mark.parametrize(
    ("fields", "says"),
    [({"output_fields": "label,label"}, "the output fields name label more than once"),
     ({"input_fields": "review, review"}, "the input fields name review more than once"),
     ({"input_fields": "review", "output_fields": "review"}, "review is both an input and an output field")],
)  # fmt: skip
def test_a_field_named_twice_is_a_form_error_not_a_failed_session(store, fields, says):
    with client_for(store) as c:
        r = c.post("/new", data={**FORM, **fields}, files={"data": ("r.csv", csv_bytes(), "text/csv")})
        assert r.status_code == 400 and says in r.text
        assert c.app.state.runs.jobs == {}
    assert store.list() == [] and uploads(store) == []
