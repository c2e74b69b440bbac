"""Drive a batch: skip completed jobs, (re)start the rest on an executor, retry transient failures, summarize.

A job's failure never stops the others. A job that failed for a transient reason (a retryable model error, a
connection, a worker that died) is retried up to `retries` times; the retry resumes its session, so calls already
paid for replay from the session's cache. An interrupted job (Ctrl-C) stops the batch: running jobs save their
best so far, and a re-run of the same file resumes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptomatix.batch.executors import Executor
from promptomatix.batch.jobs import Job
from promptomatix.batch.state import BatchState
from promptomatix.batch.summary import JobRow, job_row
from promptomatix.batch.worker import JobPayload, JobResult, pack_session, unpack_session
from promptomatix.config import RunConfig
from promptomatix.sessions import SessionStore

log = logging.getLogger(__name__)
EventFn = Callable[[str, Job, Any], None]  # ("skipped" | "started" | "retry" | "finished", job, detail)


@dataclass
class BatchReport:
    rows: list[JobRow]
    interrupted: bool = False
    state_file: str = ""

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(r.status == "completed" for r in self.rows)


@dataclass
class BatchOptions:
    retries: int = 2
    backoff_s: float = 1.0
    api_key: str | None = None
    teacher_api_key: str | None = None  # keys come from the batch's command line or environment, never a jobs file
    teacher_api_base: str | None = None  # for jobs that name no teacher server
    fake_script: dict[str, Any] | None = None
    task_pools: dict[str, Any] = field(default_factory=dict)  # task model string → ray_pool.PoolClient
    tracker: Callable[[SessionStore, str, str], str | None] | None = None  # (store, session id, job) → note
    on_event: EventFn | None = None


def run_batch(
    jobs: list[Job], jobs_file: Path, store: SessionStore, executor: Executor, opts: BatchOptions | None = None
) -> BatchReport:
    """Run every job not yet completed; the batch state (job → session) lives in the store."""
    opts = opts or BatchOptions()
    state = BatchState(store.root, Path(jobs_file)).load()
    with state.locked():
        return _Batch(jobs, store, executor, opts, state).run()


class _Batch:
    def __init__(self, jobs: list[Job], store: SessionStore, ex: Executor, opts: BatchOptions, state: BatchState):
        self.jobs, self.store, self.ex, self.opts, self.state = jobs, store, ex, opts, state
        self.by_key = {j.key: j for j in jobs}
        self.rows: dict[str, JobRow] = {}
        self.attempts: dict[str, int] = {}  # attempts that ran: a job queued or cancelled before it began has none
        self.seconds: dict[str, float] = {}
        self.shared = ex.name == "local"

    def _event(self, kind: str, job: Job, detail: Any = None) -> None:
        if self.opts.on_event is not None:
            self.opts.on_event(kind, job, detail)

    def run(self) -> BatchReport:
        interrupted = False
        try:
            for job in self.jobs:
                sid = self.state.sessions.get(job.key)
                if sid and self.store.exists(sid) and self.store.load(sid).status == "completed":
                    self.rows[job.key] = job_row(job.name, job.key, self.store, sid, skipped=True)
                    self._event("skipped", job, self.rows[job.key])
                    continue
                if not sid or not self.store.exists(sid):
                    sid = self._create_session(job)
                self._start(job, sid, attempt=1)
            while self.ex.pending():
                for result in self.ex.wait():
                    interrupted = self._handle(result) or interrupted
                if interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:
            for result in self.ex.cancel():
                self._handle(result, final=True)
        rows = [self.rows.get(j.key) or self._pending_row(j) for j in self.jobs]
        return BatchReport(rows=rows, interrupted=interrupted, state_file=str(self.state.path))

    def _create_session(self, job: Job) -> str:
        cfg = RunConfig.from_kwargs(**job.options)
        given = {k: v for k in ("train_data", "valid_data", "test_data") if (v := getattr(cfg, k)) is not None}
        session = self.store.new_session(
            description=(cfg.task_description or cfg.raw_input)[:200],
            raw_input=cfg.raw_input,
            run_config=cfg.persistable(),
            status="created",
            data={"given_rows": given} if given else {},
        )
        self.store.update(session.session_id, lambda s: s.add_event("batch", job=job.name, key=job.key))
        self.state.assign(job.key, session.session_id)
        return session.session_id

    def _start(self, job: Job, sid: str, attempt: int) -> None:
        payload = JobPayload(
            key=job.key, name=job.name, options=job.options, session_id=sid, attempt=attempt,
            store_root=str(self.store.root), store_token=self.state.token,
            session_bytes=None if self.shared else pack_session(self.store, sid),
            fake_script=self.opts.fake_script, api_key=self.opts.api_key,
            teacher_api_key=self.opts.teacher_api_key, teacher_api_base=self.opts.teacher_api_base,
            task_pool=self.opts.task_pools.get(str(job.options.get("model") or job.options.get("model_name"))),
        )  # fmt: skip
        self._event("started" if attempt == 1 else "retry", job, attempt)
        self.ex.start(payload)

    def _handle(self, r: JobResult, *, final: bool = False) -> bool:
        """Record a finished attempt; returns True when the job was interrupted (the batch stops)."""
        job = self.by_key[r.key]
        if r.session_bytes:
            unpack_session(self.store, r.session_id, r.session_bytes)
        if r.status == "interrupted" and (not r.began or self._untouched(r.session_id)):
            return True  # stopped before it began: no attempt, and `_pending_row` reports the job as it was
        self.seconds[r.key] = self.seconds.get(r.key, 0.0) + r.seconds
        attempt = self.attempts[r.key] = self.attempts.get(r.key, 0) + 1
        if r.status == "failed" and r.transient and attempt <= self.opts.retries and not final:
            log.warning("job %s failed (%s); retry %d of %d", job.name, r.error, attempt, self.opts.retries)
            time.sleep(min(self.opts.backoff_s * 2 ** (attempt - 1), 30.0))
            self._start(job, r.session_id, attempt + 1)
            return False
        row = job_row(job.name, job.key, self.store, r.session_id, status=r.status, attempts=attempt,
                      seconds=round(self.seconds[r.key], 2), node=r.node, error=r.error)  # fmt: skip
        if self.opts.tracker is not None and row.status in ("completed", "failed"):
            row.error = _track(self.opts.tracker, self.store, r.session_id, job.name, row.error)
        self.rows[r.key] = row
        self._event("finished", job, row)
        return r.status == "interrupted"

    def _untouched(self, sid: str) -> bool:
        """Still `created`: a Ctrl-C reached the job before its run did."""
        return self.store.exists(sid) and self.store.load(sid).status == "created"

    def _pending_row(self, job: Job) -> JobRow:
        sid = self.state.sessions.get(job.key)
        row = job_row(job.name, job.key, self.store, sid, attempts=self.attempts.get(job.key, 0))
        if row.status == "created":  # never started: a re-run starts it
            row.status = "pending"
        elif row.status == "running":  # started, and its process stopped before saying so
            row.status = "interrupted"
        return row


def _track(tracker: Callable[[SessionStore, str, str], str | None], store: SessionStore, sid: str, name: str,
           error: str | None) -> str | None:  # fmt: skip
    """Tracking is a side channel: its failure is noted on the job's row, never fails the job."""
    try:
        tracker(store, sid, name)
    except Exception as e:
        from promptomatix.run_guard import one_line

        cause = one_line(f"{type(e).__name__}: {e}")  # the tracking URL's password is never shown or kept
        log.warning("tracking job %s failed: %s", name, cause)
        return f"{error + '; ' if error else ''}tracking failed: {cause}"
    return error
