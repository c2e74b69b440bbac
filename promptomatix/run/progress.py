"""The caller's progress function, plus a live call counter: every model call re-sends the last step with fresh
counts (at most every TICK_S seconds), so a long stage still shows calls and cost moving."""

from __future__ import annotations

import threading
import time

from promptomatix.backends.base import ProgressEvent, ProgressFn
from promptomatix.lm.boundary import UsageReport

#: The live call counter refreshes at most this often (seconds): every call counts, the terminal keeps up.
TICK_S = 0.25


class LiveProgress:
    """Forwards steps to `user`; with `ticks`, each model call sends a counter refresh of the last step."""

    def __init__(self, user: ProgressFn | None, *, ticks: bool = True) -> None:
        if user is not None and not callable(user):  # ("'str' object is not callable" after a session was made)
            from promptomatix.errors import ConfigurationError

            raise ConfigurationError(
                f"progress must be a function taking a ProgressEvent, got {type(user).__name__}",
                hint="pass e.g. progress=lambda event: print(event.message), or leave it out",
            )
        self.user = user
        self.ticks = ticks
        self._last: ProgressEvent | None = None
        self._lock = threading.Lock()
        self._last_tick = 0.0
        self._shown = 0  # the last count shown

    @property
    def listening(self) -> bool:
        """Whether a call's usage would be shown (else the boundary need not build one per call)."""
        return self.ticks and self.user is not None

    @property
    def step_fn(self) -> ProgressFn | None:
        """What stages and backends report steps to (None: nobody listens, nothing is built)."""
        return self.step if self.user is not None else None

    def step(self, event: ProgressEvent) -> None:
        """Forward a step; a live one (a stage's own counter, such as the teacher's batches) is throttled as the
        call ticks are, and the ticks that follow refresh it."""
        self._last = event
        if self.user is None:
            return
        if event.live:
            with self._lock:
                if not self._due():
                    return
        self.user(event)

    def _due(self, calls: int | None = None) -> bool:
        """Whether a live refresh may go out now (at most every TICK_S; a call count never goes back); records it.
        Call under the lock."""
        now = time.monotonic()
        if now - self._last_tick < TICK_S or (calls is not None and calls < self._shown):
            return False
        self._last_tick = now
        if calls is not None:
            self._shown = calls
        return True

    def on_call(self, usage: UsageReport) -> None:
        """A model call (attempt) was made: refresh the counter of the step shown."""
        if not self.ticks or self.user is None or self._last is None:
            return
        total = usage.total
        with self._lock:  # parallel calls' snapshots can arrive out of order: the counter never goes back
            if not self._due(total.calls):
                return
            self.user(self._last.model_copy(update={"calls": total.calls, "cost_usd": total.cost_usd, "live": True}))
