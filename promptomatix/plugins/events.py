"""Run events: what happened in a run, told to every plugin that subscribes (`on_run_event`).

Events: run_started, candidate_scored, run_finished, run_failed, run_interrupted, feedback_added. The payload is
plain JSON-able data (scores, prompt text, the verdict); it never carries API keys (the session store scrubs what it
writes, and events are built from the same scrubbed values).
"""

from __future__ import annotations

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
    """Tell every subscriber; a failing subscriber is logged (with its plugin's name) and the run goes on."""
    from promptomatix.plugins.manager import plugin_manager

    event = RunEvent(name=name, session_id=session_id, payload=payload)
    pm = plugin_manager()
    for impl in pm.hook.on_run_event.get_hookimpls():
        try:
            impl.function(event=event)
        except Exception as e:  # a subscriber must never break a run
            log.warning("plugin %s failed on %s: %s: %s", impl.plugin_name, name, type(e).__name__, e)
    return event
