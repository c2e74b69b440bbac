"""Where jobs run: in this process one after another (`local`), or as Ray tasks on a cluster (`ray`).

Both have the same small interface the runner drives: `start(payload)`, `wait()` for the next finished jobs,
`pending()`, and `cancel()` on Ctrl-C. Ray is imported only when the ray executor is built.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from typing import Any, Protocol

from promptomatix.batch.worker import JobPayload, JobResult, error_text, execute_job, is_transient
from promptomatix.errors import ConfigurationError, UsageError

RAY_HINT = 'pip install "promptomatix[ray]"'
CANCEL_WAIT_S = 20.0


class Executor(Protocol):
    name: str

    def start(self, payload: JobPayload) -> None: ...
    def wait(self) -> list[JobResult]: ...
    def pending(self) -> int: ...
    def cancel(self) -> list[JobResult]: ...


class LocalExecutor:
    """Jobs run in this process, one at a time; Ctrl-C reaches the running job, which saves and stops."""

    name = "local"

    def __init__(self) -> None:
        self._queue: deque[JobPayload] = deque()

    def start(self, payload: JobPayload) -> None:
        self._queue.append(payload)

    def pending(self) -> int:
        return len(self._queue)

    def wait(self) -> list[JobResult]:
        return [execute_job(self._queue.popleft())]

    def cancel(self) -> list[JobResult]:
        self._queue.clear()
        return []


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError("the ray executor needs Ray", hint=RAY_HINT) from None
    return ray


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> Any:
    """Connect to `address` (or $RAY_ADDRESS); with neither, start a local Ray for this process."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address == "local" and num_cpus:
        kwargs["num_cpus"] = num_cpus
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigurationError(
            f"cannot connect to the Ray cluster at {address} ({str(e).splitlines()[0] if str(e) else e})",
            hint="check --ray-address / RAY_ADDRESS (the head's IP:PORT), or omit it to start a local Ray",
        ) from None
    return ray


class RayExecutor:
    """Each job is a Ray task (retries are the runner's, so Ray's own are off); results come back by `ray.wait`."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, job_cpus: float = 1.0) -> None:
        self.ray = init_ray(address, num_cpus=num_cpus)
        self._remote = self.ray.remote(num_cpus=job_cpus, max_retries=0)(execute_job)
        self._refs: dict[Any, JobPayload] = {}

    def start(self, payload: JobPayload) -> None:
        self._refs[self._remote.remote(payload)] = payload

    def pending(self) -> int:
        return len(self._refs)

    def wait(self) -> list[JobResult]:
        ready: list[Any] = []
        while not ready:  # short timeouts keep the driver responsive to Ctrl-C
            ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=0.5)
        return [self._collect(ref) for ref in ready]

    def _collect(self, ref: Any) -> JobResult:
        payload = self._refs.pop(ref)
        try:
            return self.ray.get(ref)
        except Exception as e:  # the task's process or node died, or Ray cancelled it
            if type(e).__name__ == "TaskCancelledError":  # a running job returns its own result when cancelled
                return JobResult(payload.key, payload.session_id, "interrupted", node="?", began=False)
            cause = getattr(e, "cause", None) or e
            return JobResult(
                key=payload.key,
                session_id=payload.session_id,
                status="failed",
                error=error_text(cause),
                transient=is_transient(cause) or is_transient(e),
                node="?",
            )

    def cancel(self) -> list[JobResult]:
        """Interrupt every running job (each saves its best so far), then collect them within a bounded wait."""
        refs = list(self._refs)
        for ref in refs:
            self.ray.cancel(ref, force=False)
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        return [self._collect(ref) for ref in refs]


def make_executor(
    name: str, *, ray_address: str | None = None, ray_cpus: int | None = None, job_cpus: float = 1.0
) -> Executor:
    """The executor named by `--executor`; a wrong name or combination is a UsageError (exit 2 from the CLI)."""
    if name == "local":
        if ray_address:
            raise UsageError("--ray-address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(ray_address, num_cpus=ray_cpus, job_cpus=job_cpus)
    raise UsageError(f"unknown executor {name!r}", hint="choose --executor local or --executor ray")
