"""The run's progress on stderr: a live status line on a terminal, and in a log a line per step plus a heartbeat."""

from __future__ import annotations

import time
from typing import Any

from promptomatix.cli.render import err_console

#: Where stderr is not a terminal (a log, CI), a counter refresh is printed at most this often (seconds), so a long
#: stage (the teacher writing rows, a held-out scoring) still shows calls moving; a terminal's status line shows all.
HEARTBEAT_S = 30.0

#: Steps printed as lines of their own (the rest only refresh the status line).
_PRINTED_STAGES = ("spec", "data", "plan", "baseline", "confirm", "final", "stopped", "model")


class ProgressView:
    """Renders ProgressEvents: a spinner line with stage, round, best score and calls/cost against the budget."""

    def __init__(self, enabled: bool, max_calls: int | None, max_usd: float | None) -> None:
        self.enabled = enabled
        self.max_calls = max_calls
        self.max_usd = max_usd
        self.status: Any = None
        self.terminal = False
        self._printed = time.monotonic()  # when a line was last printed (the heartbeat counts from it)

    def __enter__(self) -> ProgressView:
        if self.enabled:
            console = err_console()
            self.terminal = bool(console.is_terminal)
            self.status = console.status("starting", spinner="dots")
            self.status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        from promptomatix.cli.app import quiet_dspy_if_loaded

        quiet_dspy_if_loaded()
        if not self.enabled:
            return
        line = self.line(event)
        from rich.markup import escape

        if self.status is not None:
            self.status.update(escape(line))
        now = time.monotonic()
        if event.live:  # a counter refresh while calls are made: the status line, or in a log a heartbeat
            if self.terminal or now - self._printed < HEARTBEAT_S:
                return
        elif event.stage not in _PRINTED_STAGES and "done" not in event.message:
            return
        self._printed = now
        err_console().print(f"[dim]{escape(line)}[/]")

    def line(self, event: Any) -> str:
        """`[stage] round r/n best s · calls c/max · $cost/max · message`."""
        max_calls = event.max_calls if event.max_calls is not None else self.max_calls  # a resume: the run's
        max_usd = event.max_usd if event.max_usd is not None else self.max_usd
        calls = f"{(event.calls or 0) + event.calls_before}" + (f"/{max_calls}" if max_calls else "")
        cost = f"${(event.cost_usd or 0) + event.cost_before:.4f}" + (f"/${max_usd:.2f}" if max_usd else "")
        rnd = f" round {event.round}/{event.total_rounds}" if event.round else ""
        best = f" best {event.best_score:.3f}" if event.best_score is not None else ""
        return f"[{event.stage}]{rnd}{best} · calls {calls} · {cost} · {event.message}"
