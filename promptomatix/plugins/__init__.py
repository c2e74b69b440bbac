"""Plugins: installed packages extend Promptomatix through the `promptomatix` entry-point group and pluggy hooks.

    from promptomatix.plugins import hookimpl

    @hookimpl
    def on_run_event(event):
        ...

Built-ins register through the same hooks, so there is one way in. Nothing is loaded at import time: the plugin
manager is built on first use.
"""

from __future__ import annotations

from promptomatix.plugins.events import RunEvent, emit
from promptomatix.plugins.hookspecs import hookimpl, hookspec
from promptomatix.plugins.manager import plugin_manager

__all__ = ["RunEvent", "emit", "hookimpl", "hookspec", "plugin_manager"]
