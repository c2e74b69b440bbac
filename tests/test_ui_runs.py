"""Runs started from the web UI: generate feedback, refine, a new optimization with an upload, live progress,
one live run per session, cancel with Ctrl-C semantics, and the server's shutdown interrupting what it started."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient

from promptomatix.sessions import SessionStore
from promptomatix.ui.app import create_app
from promptomatix.ui.security import cookie_name, csrf_for
from tests.ui_support import GENERATED, GOOD_PROMPT, TOKEN, fake_clients, make_session, rows, wait_for

CSRF = csrf_for(TOKEN)


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


def client_for(store: SessionStore, latency: float = 0.0, clients=None, **kw) -> TestClient:
    app = create_app(store, token=TOKEN, clients=clients or (lambda: fake_clients(latency)), **kw)
    c = TestClient(app, follow_redirects=False)
    c.cookies.set(cookie_name(TOKEN), TOKEN)
    return c


def finished(c: TestClient, job_id: str, timeout: float = 60.0) -> dict:
    def poll():
        snap = c.get(f"/jobs/{job_id}/status").json()
        return snap if not snap["live"] else None

    return wait_for(poll, timeout=timeout, step=0.1)


def job_of(c: TestClient, sid: str) -> str:
    return c.app.state.runs.last_job(sid).id


def post(c: TestClient, path: str, **data):
    return c.post(path, data={"csrf": CSRF, **data})


def csv_bytes(n: int = 24) -> bytes:
    lines = ["review,label"] + [f"{r['review']},{r['label']}" for r in rows(n)]
    return ("\n".join(lines) + "\n").encode()


def test_generate_then_refine_makes_a_new_version(store):
    sid = make_session(store)
    with client_for(store) as c:
        r = post(c, f"/s/{sid}/run/generate")
        assert r.status_code == 303 and r.headers["location"] == f"/s/{sid}#run"
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "done", snap["message"]
        items = store.load(sid).feedback
        assert [(f.source, f.comment) for f in items] == [("generated", GENERATED)]

        assert post(c, f"/s/{sid}/run/refine").status_code == 303
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "done" and snap["version"] == 2, snap["message"]
        stages = [e["stage"] for e in c.get(f"/jobs/{snap['id']}/status?since=0").json()["events"]]
        assert stages[0] == "start" and "done" in stages
        s = store.load(sid)
        assert s.get_version(2).feedback_applied == [items[0].id] and s.feedback[0].status == "applied"
        page = c.get(f"/s/{sid}").text
        assert "version 2 saved" in page and f"/s/{sid}?v=2" in page


def test_progress_is_paged_by_since(store):
    sid = make_session(store)
    with client_for(store) as c:
        post(c, f"/s/{sid}/run/refine")
        snap = finished(c, job_of(c, sid))
        total = snap["next"]
        assert total == len(snap["events"]) >= 3
        tail = c.get(f"/jobs/{snap['id']}/status?since={total - 1}").json()
        assert len(tail["events"]) == 1 and tail["events"][0]["stage"] == "done"
        assert c.get(f"/jobs/{snap['id']}/status?since=x").status_code == 400


def test_new_optimization_from_an_uploaded_csv(store):
    with client_for(store) as c:
        files = {"data": ("reviews.csv", csv_bytes(), "text/csv")}
        form = {"csrf": CSRF, "task": "Classify the sentiment of a movie review", "input_fields": "review",
                "output_fields": "label", "synthetic_data_size": "0"}  # fmt: skip
        r = c.post("/new", data=form, files=files)
        assert r.status_code == 303 and r.headers["location"].startswith("/jobs/")
        job_id = r.headers["location"].rsplit("/", 1)[1]
        assert 'id="job"' in c.get(f"/jobs/{job_id}").text
        snap = finished(c, job_id)
        assert snap["status"] == "done", snap["message"]
        s = store.load(snap["session_id"])
        assert s.status == "completed" and s.get_version(1).prompt
        kept = [*s.data["train"], *s.data["valid"], *s.data.get("test", [])]
        assert {r["review"] for r in kept} <= {r["review"] for r in rows()}
        assert s.run_config["data"].startswith(str(store.root / ".uploads" / "reviews-"))  # resume reads it
        assert [x.session_id for x in store.list()] == [s.session_id]  # the upload folder is not a session


def test_new_optimization_rejections(store):
    with client_for(store, max_upload_bytes=1024) as c:
        big = {"data": ("big.csv", csv_bytes(200), "text/csv")}
        too_big = c.post("/new", data={"csrf": CSRF, "task": "x"}, files=big)
        assert too_big.status_code == 413  # with the headers every other answer has (it had none)
        huge = {"data": ("huge.csv", b"review,label\n" + b"x,y\n" * 70_000, "text/csv")}  # past the body limit
        for r in (too_big, c.post("/new", data={"csrf": CSRF, "task": "x"}, files=huge)):
            assert r.status_code == 413 and r.headers["x-frame-options"] == "DENY"  # the body limit's 413 had none
        exe = {"data": ("x.exe", b"MZ", "application/octet-stream")}
        r = c.post("/new", data={"csrf": CSRF, "task": "Classify reviews"}, files=exe)
        assert r.status_code == 400 and "not .csv" in r.text
        assert c.post("/new", data={"csrf": CSRF, "task": " "}).status_code == 400
        r = c.post("/new", data={"csrf": CSRF, "task": "Classify reviews", "backend": "nonsense"})
        assert r.status_code == 400
        r = c.post("/new", data={"csrf": CSRF, "task": "Classify reviews", "backend": "nonsense"},
                   files={"data": ("r.csv", csv_bytes(), "text/csv")})  # fmt: skip
        assert r.status_code == 400 and not any((store.root / ".uploads").glob("*"))  # the refused upload is gone
        assert c.app.state.runs.jobs == {} and store.list() == []


def test_one_live_run_per_session_and_cancel_keeps_the_session_resumable(store):
    with client_for(store, latency=0.03) as c:
        form = {"csrf": CSRF, "task": "Classify the sentiment of a movie review", "synthetic_data_size": "24"}
        r = c.post("/new", data=form, files={"data": ("r.csv", csv_bytes(), "text/csv")})
        job_id = r.headers["location"].rsplit("/", 1)[1]
        runs = c.app.state.runs
        sid = wait_for(lambda: runs.get(job_id).session_id, timeout=30)
        wait_for(lambda: store.exists(sid) and store.load(sid).task_spec, timeout=60)
        # while it runs: no second run, no delete, no pick
        assert post(c, f"/s/{sid}/run/refine").status_code == 409
        assert post(c, f"/s/{sid}/delete", confirm=sid).status_code == 409
        assert "live run" in c.get(f"/s/{sid}").text and "live run" in c.get("/").text
        assert store.exists(sid)
        cancelled = c.post(f"/jobs/{job_id}/cancel", data={"csrf": CSRF}, headers={"X-CSRF-Token": CSRF})
        assert cancelled.status_code == 200 and cancelled.json()["status"] in ("cancelling", "cancelled")
        snap = finished(c, job_id)
        assert snap["status"] == "cancelled", snap
        assert "interrupted" in snap["message"]
        assert store.load(sid).status == "interrupted"
        # Resume from the page finishes it (calls already made replay from the session's cache).
        assert post(c, f"/s/{sid}/run/resume").status_code == 303
        snap = finished(c, job_of(c, sid), timeout=120)
        assert snap["status"] == "done", snap["message"]
        assert store.load(sid).status == "completed"


def test_stopping_the_server_interrupts_its_runs(store):
    c = client_for(store, latency=0.03)
    with c:
        form = {"csrf": CSRF, "task": "Classify the sentiment of a movie review", "synthetic_data_size": "24"}
        r = c.post("/new", data=form, files={"data": ("r.csv", csv_bytes(), "text/csv")})
        job = c.app.state.runs.get(r.headers["location"].rsplit("/", 1)[1])
        wait_for(lambda: job.session_id and store.exists(job.session_id) and store.load(job.session_id).task_spec)
    assert job.status == "cancelled" and not job.thread.is_alive()
    assert store.load(job.session_id).status == "interrupted"


def test_runs_need_csrf_and_a_known_kind(store):
    sid = make_session(store)
    with client_for(store) as c:
        assert c.post(f"/s/{sid}/run/refine", data={}).status_code == 403
        assert post(c, f"/s/{sid}/run/format-disk").status_code == 404
        assert post(c, "/s/20261122-043012-3f9a1c/run/refine").status_code == 404
        assert post(c, "/jobs/nope/cancel").status_code == 404  # no such run
        assert c.app.state.runs.jobs == {}


def test_a_failing_run_shows_its_error(store):
    sid = make_session(store)
    store.update(sid, lambda s: setattr(s, "data", {}))  # refine has nothing to work on
    with client_for(store) as c:
        post(c, f"/s/{sid}/run/refine")
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "failed" and "no task spec or data" in snap["message"]
        assert "no task spec or data" in c.get(f"/s/{sid}").text


def test_refine_result_is_the_libraries(store):
    """The page's refine is followup.refine: the teacher's rewrite is the new version's instructions."""
    sid = make_session(store, initial_prompt="Label the review.")
    with client_for(store) as c:
        post(c, f"/s/{sid}/feedback", comment="mention complaints")
        post(c, f"/s/{sid}/run/refine")
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "done"
        doc = json.loads(store.session_file(sid).read_text())
        assert GOOD_PROMPT in doc["versions"][-1]["prompt"]
        assert doc["feedback"][0]["applied_in"] == snap["version"]


def test_a_run_in_another_process_blocks_runs_and_delete(store, tmp_path):
    """The store's run lock is held by a CLI-like process: the page refuses to start a run or delete."""
    import subprocess
    import sys

    sid = make_session(store)
    code = (
        "import sys, time\nfrom promptomatix.sessions import SessionStore\n"
        f"with SessionStore({str(store.root)!r}).run_lock({sid!r}, command='refine'):\n"
        "    print('locked', flush=True)\n    time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with client_for(store) as c:
            r = post(c, f"/s/{sid}/run/refine")
            assert r.status_code == 409 and "`refine` is running" in r.text
            assert post(c, f"/s/{sid}/delete", confirm=sid).status_code == 409
            assert "`refine` is running" in c.get(f"/s/{sid}").text
            assert "live run" in c.get("/").text
            assert store.exists(sid)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_resume_from_the_page_can_be_given_a_larger_limit(tmp_path):
    from tests.test_resume_budget import _interrupted

    sid, before = _interrupted(tmp_path, 100)
    store = SessionStore(tmp_path / "s")
    with client_for(store) as c:
        assert f'action="/s/{sid}/run/resume"' in c.get(f"/s/{sid}").text and 'name="max_calls"' in c.get(f"/s/{sid}").text
        assert post(c, f"/s/{sid}/run/resume", max_calls=str(before)).status_code == 303
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "failed" and "nothing is left to resume with" in snap["message"]
        assert post(c, f"/s/{sid}/run/resume", max_calls="-3").status_code == 400
        # the page's own field does what the hint's CLI flag does (there was no way to finish it from the page)
        assert post(c, f"/s/{sid}/run/resume", max_calls=str(before + 300)).status_code == 303
        snap = finished(c, job_of(c, sid), timeout=120)
        assert snap["status"] == "done", snap["message"]
    assert store.load(sid).status == "completed" and store.load(sid).total_spent().calls <= before + 300 + 5


def test_a_jobs_spending_counts_the_whole_run_and_ticks_are_not_steps(tmp_path):
    """A resume's page showed no calls at all, and each call's counter refresh became an event line of its own."""
    from tests.test_resume_budget import _interrupted

    sid, before = _interrupted(tmp_path, 100)
    store = SessionStore(tmp_path / "s")
    with client_for(store) as c:
        assert post(c, f"/s/{sid}/run/resume", max_calls=str(before + 300)).status_code == 303
        snap = finished(c, job_of(c, sid), timeout=120)
        assert snap["status"] == "done", snap["message"]
        total = store.load(sid).total_spent().calls  # (a call that got no answer is not counted against the limit)
        shown = int(snap["spent"].removeprefix("calls ").split("/")[0])
        assert before < shown <= total and f"/{before + 300} · $" in snap["spent"]  # the earlier attempt's calls too
        assert f'id="job-spent">{snap["spent"]}<' in c.get(f"/jobs/{snap['id']}").text
        messages = [e["message"] for e in snap["events"]]
        assert len(messages) == len(set(messages)) or len(messages) < 40  # steps, not one line per call
        assert all(e["calls"] >= before for e in snap["events"] if e.get("calls"))


def test_a_session_whose_teacher_had_its_own_key_refines_with_the_servers_key(store, monkeypatch):
    """The UI had no way to give the teacher's key again, so such sessions were refused there whatever the server
    had; `promptomatix ui` started with PROMPTOMATIX_TEACHER_API_KEY now passes it, as the CLI's follow-ups do."""
    sid = make_session(store)
    store.update(sid, lambda s: s.run_config.update(teacher_own_key=True))
    monkeypatch.delenv("PROMPTOMATIX_TEACHER_API_KEY", raising=False)
    with client_for(store) as c:
        post(c, f"/s/{sid}/run/refine")
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "failed" and "teacher had its own key" in snap["message"]
        monkeypatch.setenv("PROMPTOMATIX_TEACHER_API_KEY", "sk-teacher-test-0000000000000000")
        post(c, f"/s/{sid}/run/refine")
        snap = finished(c, job_of(c, sid))
        assert snap["status"] == "done", snap["message"]
        assert "sk-teacher" not in c.get(f"/s/{sid}").text
    assert "sk-teacher" not in store.session_file(sid).read_text()
