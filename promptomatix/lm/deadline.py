"""Wall-clock limits on one request.

httpx's timeout limits each socket read, so a server that trickles a byte every 0.15 s held a `--request-timeout 2`
call for 41 s. `call_within` runs the request in a daemon thread and stops waiting when its time is up, whatever
the server sends meanwhile. The LM boundary also sets the run's time-budget deadline (`budget_deadline`) around
each attempt, so a request started near the end of `--max-minutes` gets only the time left, not a whole timeout.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("promptomatix_budget_deadline", default=None)


class DeadlinePassed(Exception):
    """The request did not end within its wall-clock limit (it is abandoned, not counted again)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g} s")
        self.seconds = seconds


@contextmanager
def budget_deadline(at: float | None) -> Iterator[None]:
    """Within the block, requests made by this thread end by `at` (time.monotonic()); None: no time budget."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def budget_time_left() -> float | None:
    """Seconds left of the run's time budget for a request made now, or None without one."""
    at = _deadline.get()
    return None if at is None else at - time.monotonic()


def call_within(fn: Callable[[], T], seconds: float) -> T:
    """`fn()`, or DeadlinePassed once `seconds` have passed. The request runs in a daemon thread: when abandoned it
    ends at the provider SDK's own read timeout (or when the server stops), and never holds up the run or its exit.
    Ctrl-C interrupts the wait at once."""
    box: dict[str, Any] = {}
    done = threading.Event()
    ctx = contextvars.copy_context()

    def run() -> None:
        try:
            box["value"] = ctx.run(fn)
        except BaseException as e:  # handed to the waiting thread
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, name="promptomatix-request", daemon=True).start()
    if not done.wait(seconds):
        raise DeadlinePassed(seconds)
    if "error" in box:
        raise box["error"]
    return box["value"]
