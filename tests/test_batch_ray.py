"""Batches on a local Ray started by the test (`ray.init(num_cpus=2)`), with the scripted fake models: jobs run as
Ray tasks and their sessions land in the driver's store; one job fails, one is retried, one resumes an interrupted
session; Ctrl-C cancels running jobs, which save and stop; the task model served by a pool of Ray actors gives the
same scores and call counts as a local run. Run alone with `pytest -m ray`."""

from __future__ import annotations

import time

import pytest

from promptomatix.batch import BatchOptions, load_jobs, run_batch
from promptomatix.batch.executors import LocalExecutor, RayExecutor
from promptomatix.batch.worker import fake_clients
from promptomatix.sessions import SessionStore
from tests.batch_helpers import SCRIPT, InterruptAt, write_jobs

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("time_limit")]  # time_limit: conftest.py
LIMIT_S = 240


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, address="local")
    yield
    ray.shutdown()



def test_batch_on_ray_with_a_failure_a_retry_and_a_resumed_job(tmp_path, monkeypatch):
    jobs_file = write_jobs(
        tmp_path,
        "jobs:\n  - {name: resumed}\n  - {name: good, seed: 1}\n  - {name: flaky, seed: 2}\n"
        "  - {name: bad, data: missing.csv}\n",
    )
    jobs, store = load_jobs(jobs_file), SessionStore(tmp_path / "sessions")

    def interrupting(script, *, job="", attempt=1):  # a Ctrl-C in the first job, in this process
        clients = fake_clients(script, job=job, attempt=attempt)
        clients["task"] = InterruptAt(clients["task"], at=20)
        return clients

    monkeypatch.setattr("promptomatix.batch.worker.fake_clients", interrupting)
    first = run_batch(jobs, jobs_file, store, LocalExecutor(), BatchOptions(fake_script=SCRIPT))
    monkeypatch.undo()
    assert first.interrupted and first.rows[0].status == "interrupted"
    interrupted_sid = first.rows[0].session_id

    script = {**SCRIPT, "batch": {"transient_failures": {"flaky": 1}}}
    report = run_batch(jobs, jobs_file, store, RayExecutor(), BatchOptions(fake_script=script, backoff_s=0.1))
    by = {r.name: r for r in report.rows}
    assert not report.ok
    assert by["resumed"].status == "completed" and by["resumed"].session_id == interrupted_sid
    assert by["good"].status == "completed"
    own = store.load(by["good"].session_id).latest_version().verdict["outcome"]
    assert by["good"].verdict == own  # the run's paired verdict travels back from the worker
    assert by["flaky"].status == "completed" and by["flaky"].attempts == 2
    assert by["bad"].status == "failed" and "missing.csv" in by["bad"].error
    node = ray.get_runtime_context().get_node_id()
    assert all(r.node == node for r in report.rows)  # ran in Ray workers, not in this process
    for r in report.rows:  # every session is in the driver's store, where `sessions list` finds it
        assert store.load(r.session_id).status == r.status
    events = [e["kind"] for e in store.load(interrupted_sid).events]
    assert "interrupted" in events and events[-1] == "completed"


def test_ctrl_c_cancels_running_ray_jobs_which_save_and_stop(tmp_path):
    jobs_file = write_jobs(tmp_path, "matrix: {seed: [0, 1]}\n")
    jobs, store = load_jobs(jobs_file), SessionStore(tmp_path / "sessions")
    slow = {**SCRIPT, "task": {**SCRIPT["task"], "latency": 0.5}}
    started = time.monotonic()

    def interrupt_when_running(kind, job, detail):
        if kind == "started" and job.index == len(jobs) - 1:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until a job is inside its run, then press Ctrl-C
                if any(s.status == "running" for s in store.list()):
                    time.sleep(1.0)
                    raise KeyboardInterrupt
                time.sleep(0.2)

    report = run_batch(
        jobs, jobs_file, store, RayExecutor(), BatchOptions(fake_script=slow, on_event=interrupt_when_running)
    )
    assert report.interrupted and not report.ok
    assert time.monotonic() - started < 120
    statuses = {s.status for s in store.list()}
    assert "completed" not in statuses and "interrupted" in statuses


def test_task_model_on_a_pool_of_actors_matches_a_local_run(tmp_path):
    from promptomatix.batch.ray_pool import make_pool

    jobs_file = write_jobs(tmp_path, "jobs:\n  - {name: pooled, num_threads: 4}\n")
    jobs = load_jobs(jobs_file)
    local = run_batch(jobs, jobs_file, SessionStore(tmp_path / "local"), LocalExecutor(),
                      BatchOptions(fake_script=SCRIPT)).rows[0]  # fmt: skip
    pool = make_pool("local/smollm2-135m", 2, per_actor=2, fake_role={**SCRIPT["task"], "latency": 0.01})
    pools = {str(jobs[0].options.get("model")): pool}
    remote = run_batch(jobs, jobs_file, SessionStore(tmp_path / "pooled"), RayExecutor(),
                       BatchOptions(fake_script=SCRIPT, task_pools=pools)).rows[0]  # fmt: skip
    assert remote.status == local.status == "completed"
    assert (remote.initial_test, remote.optimized_test, remote.optimized_valid) == (
        local.initial_test, local.optimized_test, local.optimized_valid,
    )  # fmt: skip
    assert remote.calls == local.calls  # the boundary (cache, budget, counts) stayed in the job
    served = [s["calls"] for s in pool.stats()]
    assert len(served) == 2 and all(n > 0 for n in served) and sum(served) < remote.calls
