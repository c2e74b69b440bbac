"""`promptomatix batch` with the local executor and scripted fake models: a failing job never stops the others, the
exit code says how many failed, a re-run skips completed jobs and resumes interrupted ones in the same session,
transient failures are retried, and sessions travel as bytes when a worker cannot see the driver's store."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from promptomatix.batch import BatchOptions, load_jobs, run_batch
from promptomatix.batch.executors import LocalExecutor
from promptomatix.batch.worker import JobPayload, execute_job, fake_clients, pack_session, unpack_session
from promptomatix.cli.app import app
from promptomatix.sessions import SessionStore
from tests.batch_helpers import SCRIPT, InterruptAt, write_jobs, write_script

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(tmp_path)))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))
    return tmp_path


def batch(*args: str):
    r = runner.invoke(app, ["batch", *args, "--json", "-q"], catch_exceptions=False)
    return r.exit_code, json.loads(r.stdout)


def test_failing_job_does_not_stop_the_others_and_rerun_skips_completed(env):
    jobs = write_jobs(env, "matrix: {seed: [0, 1]}\njobs:\n  - {name: good}\n  - {name: bad, data: missing.csv}\n")
    code, out = batch(str(jobs))
    by = {j["name"]: j for j in out["jobs"]}
    assert code == 1 and not out["ok"]
    assert [by[f"good[seed={s}]"]["status"] for s in (0, 1)] == ["completed", "completed"]
    assert [by[f"bad[seed={s}]"]["status"] for s in (0, 1)] == ["failed", "failed"]
    assert "missing.csv" in by["bad[seed=0]"]["error"] and by["bad[seed=0]"]["attempts"] == 1  # not transient
    good = by["good[seed=0]"]
    assert good["optimized_test"] > good["initial_test"]
    version = SessionStore(env / "sessions").load(good["session_id"]).latest_version()
    assert good["verdict"] == version.verdict["outcome"]  # the run's paired verdict, not "better" by the means
    assert good["calls"] > 0 and good["seconds"] > 0
    store = SessionStore(env / "sessions")
    listed = {s.session_id: s.status for s in store.list()}
    assert all(listed[j["session_id"]] == j["status"] for j in out["jobs"])  # `sessions list` sees every job
    code2, again = batch(str(jobs))
    by2 = {j["name"]: j for j in again["jobs"]}
    assert code2 == 1
    assert by2["good[seed=0]"]["skipped"] and by2["good[seed=0]"]["session_id"] == good["session_id"]
    assert by2["good[seed=0]"]["calls"] == good["calls"]  # read back from the session, not re-run
    assert by2["bad[seed=1]"]["session_id"] == by["bad[seed=1]"]["session_id"]  # retried in its own session
    assert len(store.list()) == 4


def test_a_running_batch_job_holds_its_sessions_run_lock(env, monkeypatch):
    """The batch creates the session before the job runs, and Run only locks a session it creates: `sessions list`
    called the live job stale, and a `resume` (or `delete`) ran beside it."""
    from promptomatix.pipeline import Run

    seen, execute = [], Run.execute

    def spy(run):
        seen.append(run.env.recorder.store.live_run(run.session_id))
        return execute(run)

    monkeypatch.setattr(Run, "execute", spy)
    code, _ = batch(str(write_jobs(env, "jobs:\n  - {name: one}\n")))
    assert code == 0 and seen and seen[0] is not None and seen[0]["command"] == "batch"


def test_csv_output_and_all_completed_exits_zero(env):
    jobs = write_jobs(env, "jobs:\n  - {name: only}\n")
    r = runner.invoke(app, ["batch", str(jobs), "--csv", "-q"], catch_exceptions=False)
    assert r.exit_code == 0
    header, row = r.stdout.strip().splitlines()
    assert header.startswith("name,key,session_id,status") and row.startswith("only,") and ",completed," in row


def test_transient_failure_is_retried_and_resumes_its_session(env, monkeypatch):
    script = {**SCRIPT, "batch": {"transient_failures": {"flaky": 1}}}
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(write_script(env, script)))
    jobs = write_jobs(env, "jobs:\n  - {name: flaky}\n")
    code, out = batch(str(jobs), "--retries", "0")
    assert code == 1 and out["jobs"][0]["status"] == "failed" and out["jobs"][0]["attempts"] == 1
    first_sid = out["jobs"][0]["session_id"]
    code, out = batch(str(jobs), "--retries", "1")  # attempt 1 fails again (scripted), attempt 2 completes
    job = out["jobs"][0]
    assert code == 0 and job["status"] == "completed" and job["attempts"] == 2 and job["session_id"] == first_sid
    events = [e["kind"] for e in SessionStore(env / "sessions").load(first_sid).events]
    assert events.count("failed") == 2 and events[-1] == "completed"


def test_ctrl_c_stops_the_batch_and_a_rerun_resumes_the_interrupted_job(env, monkeypatch):
    jobs_file = write_jobs(env, "jobs:\n  - {name: first}\n  - {name: second, seed: 1}\n")
    jobs, store = load_jobs(jobs_file), SessionStore(env / "sessions")

    def interrupting(script, *, job="", attempt=1):
        clients = fake_clients(script, job=job, attempt=attempt)
        clients["task"] = InterruptAt(clients["task"], at=20)
        return clients

    monkeypatch.setattr("promptomatix.batch.worker.fake_clients", interrupting)
    report = run_batch(jobs, jobs_file, store, LocalExecutor(), BatchOptions(fake_script=SCRIPT))
    assert report.interrupted and not report.ok
    assert [r.status for r in report.rows] == ["interrupted", "pending"]
    assert [r.attempts for r in report.rows] == [1, 0]  # the second job was only queued
    sid = report.rows[0].session_id
    assert store.load(sid).status == "interrupted"
    monkeypatch.undo()
    report = run_batch(jobs, jobs_file, store, LocalExecutor(), BatchOptions(fake_script=SCRIPT))
    assert report.ok and report.rows[0].session_id == sid
    session = store.load(sid)
    assert session.status == "completed" and "interrupted" in [e["kind"] for e in session.events]


class _QueuedRay:
    """The part of Ray the executor uses: a task runs when its result is asked for, unless it was cancelled first, as
    a queued Ray task is (a running one gets KeyboardInterrupt and returns its own result)."""

    class TaskCancelledError(Exception):
        pass

    def __init__(self) -> None:
        self.cancelled: set[int] = set()

    def remote(self, **_):
        return lambda fn: type("Remote", (), {"remote": staticmethod(lambda p: _Ref(fn, p))})

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def cancel(self, ref, force=False):
        self.cancelled.add(id(ref))

    def get(self, ref):
        if id(ref) in self.cancelled:
            raise self.TaskCancelledError()  # Ray's message is empty
        return ref.fn(ref.payload)


class _Ref:
    def __init__(self, fn, payload) -> None:
        self.fn, self.payload = fn, payload


def test_ray_jobs_cancelled_before_they_ran_are_pending_like_local_ones(env, monkeypatch):
    """Ray's TaskCancelledError for a queued job was reported `interrupted · TaskCancelledError:` (empty message)."""
    from promptomatix.batch.executors import RayExecutor

    monkeypatch.setattr("promptomatix.batch.executors.init_ray", lambda *a, **k: _QueuedRay())
    jobs_file = write_jobs(env, "jobs:\n  - {name: ran}\n  - {name: queued, seed: 1}\n")
    jobs, store = load_jobs(jobs_file), SessionStore(env / "sessions")

    def ctrl_c_after_the_first(kind, job, detail):
        if kind == "finished" and job.name == "ran":  # once: a second one would leave run_batch (and pytest)
            raise KeyboardInterrupt

    opts = BatchOptions(fake_script=SCRIPT, on_event=ctrl_c_after_the_first)
    report = run_batch(jobs, jobs_file, store, RayExecutor(), opts)
    ran, queued = report.rows
    assert report.interrupted and ran.status == "completed"
    assert (queued.status, queued.error, queued.attempts) == ("pending", None, 0)
    assert store.load(queued.session_id).status == "created"


def test_a_missing_data_file_fails_naming_its_place_and_a_rerun_resumes_that_session(env, monkeypatch):
    """The cwd's file of that name was read instead, and once the file appeared the job got a new key and session."""
    beside = env / "jobs"
    beside.mkdir()
    monkeypatch.chdir(env)  # env holds a reviews.csv: it must not be read
    jobs = write_jobs(env, "jobs:\n  - {name: late}\n").rename(beside / "jobs.yaml")
    code, out = batch(str(jobs))
    (row,) = out["jobs"]
    assert code == 1 and row["status"] == "failed" and str(beside.resolve() / "reviews.csv") in row["error"]
    (beside / "reviews.csv").write_bytes((env / "reviews.csv").read_bytes())
    code, again = batch(str(jobs))
    assert code == 0 and again["jobs"][0]["status"] == "completed"
    assert again["jobs"][0]["session_id"] == row["session_id"]
    assert len(SessionStore(env / "sessions").list()) == 1


def test_an_interrupted_batch_says_so_once_and_exits_130(env, monkeypatch, capsys):
    from promptomatix.cli.app import main

    def interrupting(script, *, job="", attempt=1):
        clients = fake_clients(script, job=job, attempt=attempt)
        clients["task"] = InterruptAt(clients["task"], at=20)
        return clients

    monkeypatch.setattr("promptomatix.batch.worker.fake_clients", interrupting)
    with pytest.raises(SystemExit) as e:
        main(["batch", str(write_jobs(env, "jobs:\n  - {name: first}\n")), "-q", "--json"])
    err = capsys.readouterr().err
    assert e.value.code == 130 and err.count("interrupted") == 1 and "0 of 1 jobs completed" in err, err


def test_worker_without_the_driver_store_ships_the_session_back_as_bytes(env, tmp_path):
    jobs_file = write_jobs(env, "jobs:\n  - {name: shipped}\n")
    job = load_jobs(jobs_file)[0]
    driver = SessionStore(env / "sessions")
    sid = driver.new_session(raw_input=job.options["raw_input"], status="created").session_id
    payload = JobPayload(key=job.key, name=job.name, options=job.options, session_id=sid, store_root=str(driver.root),
                         store_token="not-the-batch-token", fake_script=SCRIPT,
                         session_bytes=pack_session(driver, sid))  # fmt: skip
    result = execute_job(payload)
    assert result.status == "completed" and result.session_bytes, result.error
    assert driver.load(sid).status == "created"  # the worker did not write into the driver's store
    unpack_session(driver, sid, result.session_bytes)
    session = driver.load(sid)
    assert session.status == "completed" and session.versions and (driver.session_dir(sid) / "cache.sqlite").exists()


def test_missing_extras_name_the_install_command(env, monkeypatch, capsys):
    import builtins

    real = builtins.__import__

    def without_extras(name, *a, **k):
        if name in ("ray", "mlflow"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", without_extras)
    jobs = write_jobs(env, "jobs:\n  - {name: x}\n")
    from promptomatix.cli.app import main

    for args, extra in ((["--executor", "ray"], "ray"), (["--track", "mlflow"], "mlflow")):
        with pytest.raises(SystemExit) as e:
            main(["batch", str(jobs), *args])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 1 and len(err.splitlines()) == 1 and f'pip install "promptomatix[{extra}]"' in err


def test_a_failed_jobs_calls_are_in_the_summary(env):
    """A job that failed after spending calls showed none (the summary read the latest version's usage only)."""
    jobs = write_jobs(env, "jobs:\n  - {name: tight, max_calls: 8}\n")
    code, out = batch(str(jobs))
    (row,) = out["jobs"]
    assert code == 1 and row["status"] == "failed" and "--max-calls" in row["error"]
    spent = SessionStore(env / "sessions").load(row["session_id"]).total_spent()
    assert row["calls"] == spent.calls > 0 and row["cost_usd"] == spent.cost_usd


def test_json_and_csv_together_are_a_usage_error_before_any_job_runs(env, capsys):
    """`--json --csv` printed the JSON and silently ignored --csv."""
    from promptomatix.cli.app import main

    with pytest.raises(SystemExit) as e:
        main(["batch", str(write_jobs(env, "jobs:\n  - {name: one}\n")), "--json", "--csv", "-q"])
    out = capsys.readouterr()
    assert e.value.code == 2 and out.out == "" and "--json and --csv cannot be used together" in out.err
    assert not (env / "sessions").exists() or not SessionStore(env / "sessions").list()
