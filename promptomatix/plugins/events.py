"""Run events: what happened in a run, told to every plugin that subscribes (`on_run_event`).

Events: run_started, candidate_scored, run_finished, run_failed, run_interrupted, feedback_added. The payload is
plain JSON-able data (scores, prompt text, the verdict); it never carries API keys: `emit` scrubs every payload as the
session store scrubs session.json (a run_started config once sent `--api-base https://user:pass@...` raw).
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

EventName = Literal[
    "run_started", "candidate_scored", "run_finished", "run_failed", "run_interrupted", "feedback_added"
]


class RunEvent(BaseModel):
    name: EventName
    session_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))


def emit(name: EventName, session_id: str | None = None, **payload: Any) -> RunEvent:
    """Tell every subscriber; a failing subscriber is logged (with its plugin's name) and the run goes on.

    A subscriber's `sys.exit()` counts as a failure too: it ended the run with no message (the session left
    `running`) and exited a `process_input` caller's process. Ctrl-C (KeyboardInterrupt) still stops the run."""
    from promptomatix.plugins.manager import plugin_manager

    event = RunEvent(name=name, session_id=session_id, payload=scrubbed(payload))
    pm = plugin_manager()
    for impl in pm.hook.on_run_event.get_hookimpls():
        try:
            impl.function(event=event)
        except (Exception, SystemExit) as e:  # a subscriber must never break a run, nor exit its caller
            level = logging.WARNING if _first_failure(impl.plugin_name, session_id) else logging.DEBUG
            log.log(level, "plugin %s failed on %s: %s", impl.plugin_name, name, _failure(e))
    return event


def scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as session.json would store it: a subscriber is third-party code (a webhook, a tracker), so keys
    and URL credentials never reach it. `config` is configuration (every credential-like key dropped, URL settings
    read as URLs); the rest may hold user rows, where a `token` column is data."""
    from promptomatix.sessions.secrets import env_secret_values, scrub

    env = env_secret_values()
    out: dict[str, Any] = {}
    for key, value in payload.items():  # one key at a time: a key named like a credential is dropped, order kept
        out.update(scrub({key: value}, keep_ambiguous_keys=key != "config", env_values=env))
    return out


def _failure(e: BaseException) -> str:
    """What a subscriber did, in words: `SystemExit: 4` reads as an error code, not as the exit it tried."""
    if isinstance(e, SystemExit):
        return f"it called sys.exit({e.code!r}), which was ignored"
    return f"{type(e).__name__}: {e}"


def _first_failure(plugin: str, session_id: str | None) -> bool:
    """True the first time for a plugin and a run: a subscriber that always fails is one warning, not one line
    per candidate (15 of a quick run's 27 lines)."""
    marks = _failures(plugin, session_id)
    if marks:
        return False
    marks.append(True)
    return True


@functools.lru_cache(maxsize=256)
def _failures(plugin: str, session_id: str | None) -> list[bool]:
    return []  # bounded: the 256 latest (plugin, run) pairs
