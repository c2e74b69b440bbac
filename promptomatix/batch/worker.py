"""Run one job in its own session, in whatever process the executor chose (the driver, or a Ray worker).

The session is created by the driver before the job is sent, so the driver always knows which session a job
runs in. A worker that sees the driver's store (same machine, or a shared path: told by the batch token) runs in
it directly; otherwise it runs in a temporary store seeded with the session's bytes, and sends the session
directory back as bytes for the driver to write into its store.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from promptomatix.errors import LMCallError, ModelUnavailableError, PromptomatixError, RunInterrupted
from promptomatix.sessions import SessionStore

JobStatus = Literal["completed", "failed", "interrupted"]
_SKIP_FILES = {".lock", ".run.lock"}
#: Ray errors that mean a worker or node went away: the job did not fail, its process did.
_TRANSIENT_NAMES = {
    "WorkerCrashedError", "NodeDiedError", "RayActorError", "ActorDiedError", "ActorUnavailableError",
    "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError", "RaySystemError",
}  # fmt: skip


@dataclass
class JobPayload:
    """Everything a worker needs; plain data so it pickles to a Ray worker."""

    key: str
    name: str
    options: dict[str, Any]
    session_id: str
    attempt: int = 1
    store_root: str = ""
    store_token: str = ""
    session_bytes: bytes | None = None
    fake_script: dict[str, Any] | None = None
    api_key: str | None = None
    teacher_api_key: str | None = None
    teacher_api_base: str | None = None  # the batch's, for a job that names none
    task_pool: Any = None  # a ray_pool.PoolClient: the task role's calls go to Ray actors


@dataclass
class JobResult:
    key: str
    session_id: str
    status: JobStatus
    error: str | None = None
    transient: bool = False
    node: str = "local"
    seconds: float = 0.0
    session_bytes: bytes | None = None
    began: bool = True  # False: cancelled before it ran (a queued Ray task); the job stays as it was


def execute_job(p: JobPayload) -> JobResult:
    """Run (or resume) the job's session; never raises for a job's own failure."""
    from promptomatix.batch.state import store_is_shared

    started = time.monotonic()
    shared = store_is_shared(p.store_root, p.store_token)
    tmp = None if shared else tempfile.mkdtemp(prefix="promptomatix-job-")
    store = SessionStore(p.store_root if shared else tmp)
    try:
        if not shared and p.session_bytes:
            unpack_session(store, p.session_id, p.session_bytes)
        status, error, transient = _run(p, store)
        return JobResult(
            key=p.key,
            session_id=p.session_id,
            status=status,
            error=error,
            transient=transient,
            node=current_node(),
            seconds=round(time.monotonic() - started, 3),
            session_bytes=None if shared else pack_session(store, p.session_id),
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(p: JobPayload, store: SessionStore) -> tuple[JobStatus, str | None, bool]:
    from promptomatix.config import RunConfig
    from promptomatix.followup import resume
    from promptomatix.pipeline import Run
    from promptomatix.run_guard import run_lock

    try:
        clients = job_clients(p)
        session = store.load(p.session_id)
        if session.status == "completed":
            return "completed", None, False
        if session.task_spec and session.data:  # interrupted or failed after the spec and data: continue
            # the job's own api_base: the session's lost its credentials when saved (userinfo, `?code=`)
            resume(p.session_id, store=store, clients=clients, api_key=p.api_key, api_base=job_api_base(p.options),
                   **job_teacher(p, resuming=True))
        else:
            cfg = RunConfig.from_kwargs(**p.options, api_key=p.api_key, **job_teacher(p, resuming=False))
            with run_lock(store, p.session_id, "batch"):  # the session exists already: Run would not lock it
                Run(cfg, clients=clients, store=store, session_id=p.session_id).execute()
        return "completed", None, False
    except RunInterrupted as e:
        return "interrupted", e.message, False
    except KeyboardInterrupt:  # a Ray cancel, or Ctrl-C outside the run's own handlers
        return "interrupted", "interrupted", False
    except Exception as e:  # a job's failure is its own: reported, never raised to the batch
        return "failed", error_text(e), is_transient(e)


def job_api_base(options: dict[str, Any]) -> str | None:
    """The api_base a job's options give (ours or upstream's name), credentials included."""
    value = options.get("api_base") or options.get("model_api_base")
    return str(value) if value else None


def job_teacher(p: JobPayload, *, resuming: bool) -> dict[str, Any]:
    """The teacher's key (the batch's) and server: the job's own (credentials included: the session's lost them
    when saved), else the batch's. A new run reads the job's own from its options."""
    out: dict[str, Any] = {"teacher_api_key": p.teacher_api_key} if p.teacher_api_key else {}
    own = p.options.get("teacher_api_base") or p.options.get("config_model_api_base")
    if (own and resuming) or (not own and p.teacher_api_base):
        out["teacher_api_base"] = str(own or p.teacher_api_base)
    return out


def error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    if isinstance(e, PromptomatixError) or not text:
        return text or type(e).__name__
    return f"{type(e).__name__}: {text}"


def is_transient(e: BaseException) -> bool:
    """Worth retrying: a retryable model error, an unavailable model, a connection or timeout, or a worker/node that
    went away. A run whose every task call failed ends in ModelUnavailableError (its provider cause is in the
    message, not chained), so that counts as transient: a later attempt may reach the model; `--retries` bounds it."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, LMCallError):
            return current.retryable
        if isinstance(current, ModelUnavailableError):
            return True
        if isinstance(current, (ConnectionError, TimeoutError)) or type(current).__name__ in _TRANSIENT_NAMES:
            return True
        if getattr(current, "retryable", False) is True:
            return True
        current = current.__cause__ or current.__context__
    return False


def job_clients(p: JobPayload) -> dict[str, Any] | None:
    """Scripted fakes (PROMPTOMATIX_FAKE_LM's script, shipped as a dict) and/or the task role's actor pool."""
    clients: dict[str, Any] | None = None
    if p.fake_script is not None:
        clients = fake_clients(p.fake_script, job=p.name, attempt=p.attempt)
    if p.task_pool is not None:
        clients = {**(clients or {}), "task": p.task_pool}
    return clients


def fake_clients(script: dict[str, Any], *, job: str = "", attempt: int = 1) -> dict[str, Any]:
    """FakeLMs from a script (see cli/fakes.py), plus two batch-only keys used by tests and the benchmark.

    A role's `"latency": seconds` makes each of its calls sleep that long. A top-level
    `"batch": {"transient_failures": {"job name": N}}` makes the task model of that job fail with a retryable
    error on its first N attempts (beyond the boundary's own retries), to exercise the batch's retry.
    """
    from promptomatix.cli.fakes import clients_from_script

    roles = {k: v for k, v in script.items() if k != "batch"}
    clients = clients_from_script(roles)
    for role, spec in roles.items():
        if isinstance(spec, dict) and spec.get("latency"):
            clients[role].latency = float(spec["latency"])
    failures = ((script.get("batch") or {}).get("transient_failures") or {}).get(job, 0)
    if attempt <= int(failures):
        clients["task"].fail_times = 10**6
    return clients


def current_node() -> str:
    """The Ray node id when running in a Ray worker, else `local`."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return str(ray.get_runtime_context().get_node_id())
    return "local"


def pack_session(store: SessionStore, session_id: str) -> bytes | None:
    """The session directory as a gzipped tar (lock files left out)."""
    directory = store.session_dir(session_id)
    if not directory.is_dir():
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and path.name not in _SKIP_FILES:
                tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buf.getvalue()


def unpack_session(store: SessionStore, session_id: str, data: bytes) -> None:
    """Write a packed session into `store`, replacing its directory in one rename (readers never see half)."""
    target = store.session_dir(session_id)
    store.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{session_id}.", dir=store.root))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")
            else:  # pragma: no cover - Pythons without extraction filters
                for member in tar.getmembers():
                    if member.isfile() and ".." not in Path(member.name).parts and not member.name.startswith("/"):
                        tar.extract(member, staging)
        old = None
        if target.exists():
            old = target.with_name(f".{session_id}.old.{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
