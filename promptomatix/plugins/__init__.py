"""Plugins: installed packages extend Promptomatix through the `promptomatix` entry-point group and pluggy hooks.

    from promptomatix.plugins import hookimpl

    @hookimpl
    def on_run_event(event):
        ...

Built-ins register through the same hooks, so there is one way in. Nothing is loaded at import time: the plugin
manager is built on first use, and `RunEvent`/`emit` (pydantic) are imported when first asked for, so the CLI's
startup pays only for pluggy.
"""

from __future__ import annotations

from typing import Any

from promptomatix.plugins.hookspecs import hookimpl, hookspec
from promptomatix.plugins.manager import plugin_manager

__all__ = ["RunEvent", "emit", "hookimpl", "hookspec", "plugin_manager"]


def __getattr__(name: str) -> Any:
    if name in ("RunEvent", "emit"):
        from promptomatix.plugins import events

        return getattr(events, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
