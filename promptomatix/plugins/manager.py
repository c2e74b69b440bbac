"""The plugin manager: the hook specifications, the built-ins, and every installed `promptomatix` entry point."""

from __future__ import annotations

import functools
import logging

import pluggy

from promptomatix.plugins import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "promptomatix"


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """Built once per process, on first use (never at import time)."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm
