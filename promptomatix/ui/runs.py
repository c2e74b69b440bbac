"""Background runs for the web UI: one worker thread per run, progress kept in memory for the page to poll.

The work itself is the library's (`followup.refine`, `followup.resume`, `followup.generate_feedback`,
`pipeline.Run.execute`); this module only runs it off the request thread and records what it reports.

Cancelling a thread: Python cannot interrupt another thread, so cancel sets a flag and the run's progress
callback raises KeyboardInterrupt the next time the run reports progress. The run then takes the same path as
Ctrl-C in the terminal: the session is marked interrupted, the best version so far is kept, and it can be resumed.
A step that reports no progress (one long model call) finishes before the cancel takes effect.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptomatix.errors import NotFoundError, PromptomatixError, RunInterrupted, SessionError
from promptomatix.sessions import SessionStore

log = logging.getLogger(__name__)

MAX_EVENTS = 500  # per job; the oldest are dropped (the page shows the tail)
MAX_JOBS = 100  # finished jobs kept for their pages; the oldest finished are forgotten
LIVE = ("starting", "running", "cancelling")

Work = Callable[["Job", Callable[[Any], None]], Any]


@dataclass
class Job:
    """One background run and what it reported. Read by request threads, written by its worker."""

    id: str
    kind: str  # optimize | refine | resume | generate
    session_id: str | None
    status: str = "starting"  # starting | running | cancelling | done | cancelled | interrupted | failed
    message: str = ""
    version: int | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    cancel_flag: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    spent: str = ""  # "calls 12/100 · $0.0000": the run's as a whole (a resume's earlier calls too), against its limits

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def count(self, event: Any) -> int:
        """Keep the run's calls and cost from a progress event; the calls, for the event's record."""
        calls = (getattr(event, "calls", None) or 0) + (getattr(event, "calls_before", 0) or 0)
        cost = (getattr(event, "cost_usd", None) or 0.0) + (getattr(event, "cost_before", 0.0) or 0.0)
        max_calls, max_usd = getattr(event, "max_calls", None), getattr(event, "max_usd", None)
        line = f"calls {calls}" + (f"/{max_calls}" if max_calls is not None else "") + f" · ${cost:.4f}"
        with self.lock:
            self.spent = line + (f"/{max_usd:.2f}" if max_usd is not None else "")
        return calls

    def add_event(self, stage: str, message: str, **extra: Any) -> None:
        with self.lock:
            self.events.append({"stage": stage, "message": message, "at": time.time(), **extra})
            if len(self.events) > MAX_EVENTS:
                cut = len(self.events) - MAX_EVENTS
                del self.events[:cut]
                self.dropped += cut

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """The job as JSON for the page: status and the events after index `since` (counted from the start)."""
        with self.lock:
            start = max(0, since - self.dropped)
            events = list(self.events[start:])
            total = self.dropped + len(self.events)
        return {
            "id": self.id,
            "kind": self.kind,
            "session_id": self.session_id,
            "status": self.status,
            "live": self.live,
            "message": self.message,
            "version": self.version,
            "events": events,
            "next": total,
            "seconds": round((self.finished or time.time()) - self.started, 1),
            "spent": self.spent,
        }


class RunManager:
    """Starts runs in worker threads; at most one live run per session (from this server, and, where the store
    can tell, from any process)."""

    def __init__(self, store: SessionStore, clients: Callable[[], dict[str, Any] | None]) -> None:
        self.store = store
        self.clients = clients
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def live_job(self, session_id: str) -> Job | None:
        with self._lock:
            return next((j for j in self.jobs.values() if j.session_id == session_id and j.live), None)

    def last_job(self, session_id: str) -> Job | None:
        with self._lock:
            mine = [j for j in self.jobs.values() if j.session_id == session_id]
        return max(mine, key=lambda j: j.started) if mine else None

    def busy(self, session_id: str) -> str | None:
        """Why a session cannot start a run or be deleted now, or None when it can."""
        if self.live_job(session_id) is not None:
            return f"session {session_id} has a live run started from this page"
        return self.busy_elsewhere(session_id)

    def start(self, kind: str, session_id: str | None, work: Work) -> Job:
        """Start `work(job, progress)` in a worker thread; SessionError if the session already has a live run."""
        with self._lock:
            if session_id is not None:
                live = next((j for j in self.jobs.values() if j.session_id == session_id and j.live), None)
                if live is not None:
                    raise SessionError(
                        f"session {session_id} already has a live run ({live.kind})",
                        hint="wait for it to finish or cancel it",
                    )
            job = Job(id=secrets.token_hex(8), kind=kind, session_id=session_id)
            self.jobs[job.id] = job
            self._forget_old()
        if session_id is not None and (why := self.busy_elsewhere(session_id)):
            job.status, job.message, job.finished = "failed", why, time.time()
            raise SessionError(why, hint="wait for it to finish")
        job.thread = threading.Thread(target=self._run, args=(job, work), name=f"promptomatix-ui-{kind}", daemon=True)
        job.thread.start()
        return job

    def shutdown(self, timeout: float = 15.0) -> None:
        """Server stopping: cancel live runs (each keeps its best so far) and give them `timeout` s to save."""
        live = [j for j in list(self.jobs.values()) if j.live]
        for job in live:
            self.cancel(job.id)
        deadline = time.monotonic() + timeout
        for job in live:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))

    def busy_elsewhere(self, session_id: str) -> str | None:
        live_run = getattr(self.store, "live_run", None)  # the store's cross-process run lock
        owner = live_run(session_id) if live_run is not None else None
        if not owner:
            return None
        what = owner.get("command") if isinstance(owner, dict) else None
        pid = owner.get("pid") if isinstance(owner, dict) else None
        return f"session {session_id} is busy: `{what or 'a run'}` is running" + (f" (process {pid})" if pid else "")

    def cancel(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no run {job_id!r} on this server")
        if job.live:
            job.cancel_flag.set()
            job.status = "cancelling"
            job.add_event("cancel", "cancel requested; stopping at the next progress step")
        return job

    def _forget_old(self) -> None:
        done = sorted((j for j in self.jobs.values() if not j.live), key=lambda j: j.started)
        for j in done[: max(0, len(self.jobs) - MAX_JOBS)]:
            del self.jobs[j.id]

    def progress_fn(self, job: Job) -> Callable[[Any], None]:
        """The ProgressFn handed to the run: records each event, and raises KeyboardInterrupt once cancelled."""

        def progress(event: Any) -> None:
            calls = job.count(event)
            if not getattr(event, "live", False):  # a counter refresh (every call) is not a step of its own
                job.add_event(
                    getattr(event, "stage", "?"),
                    getattr(event, "message", str(event)),
                    round=getattr(event, "round", None),
                    best_score=getattr(event, "best_score", None),
                    calls=calls,
                )
            if job.cancel_flag.is_set():
                raise KeyboardInterrupt

        return progress

    def _run(self, job: Job, work: Work) -> None:
        if job.status == "starting":
            job.status = "running"
        job.add_event("start", f"{job.kind} started")
        try:
            result = work(job, self.progress_fn(job))
        except RunInterrupted as e:
            job.session_id = job.session_id or e.session_id
            job.status = "cancelled" if job.cancel_flag.is_set() else "interrupted"
            job.message = str(e)
        except KeyboardInterrupt:  # cancelled before the run opened a session
            job.status, job.message = "cancelled", "cancelled before the run started"
        except PromptomatixError as e:
            job.status, job.message = "failed", str(e)
        except Exception as e:  # a bug or a third-party error: the page shows it, the log keeps the traceback
            log.exception("background %s failed", job.kind)
            job.status, job.message = "failed", f"unexpected error: {type(e).__name__}: {e}"
        else:
            job.session_id = job.session_id or getattr(result, "session_id", None)
            job.version = getattr(result, "version", None)
            job.status = "done"
            job.message = _done_message(job, result)
        job.finished = time.time()
        job.add_event(job.status, job.message)


def _done_message(job: Job, result: Any) -> str:
    if isinstance(result, dict) and "feedback_items" in result:
        return f"{len(result['feedback_items'])} feedback items added"
    if job.version is not None:
        return f"version {job.version} saved"
    return "finished"
