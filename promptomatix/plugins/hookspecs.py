"""The hook specifications a plugin can implement (pluggy, project name "promptomatix")."""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "promptomatix"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def on_run_event(event: Any) -> None:
    """A run event (`promptomatix.plugins.RunEvent`): for logging, webhooks and tracking.

    Called synchronously in the run's process; an exception in a subscriber is logged and never stops the run.
    """
