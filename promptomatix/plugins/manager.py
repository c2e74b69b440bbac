"""The plugin manager: the hook specifications, the built-ins, and every installed `promptomatix` entry point.

Built once per process, on first use. Building it imports the plugin modules and nothing heavy of ours (no DSPy,
no litellm). A plugin that fails to import is not silently dropped: it is recorded in `failed_plugins()`, logged,
shown by `promptomatix plugins`, and the CLI prints one warning line for it.

PROMPTOMATIX_LOAD_PLUGINS=name1,name2 loads only those entry points (an empty value loads none), as simonw/llm's
LLM_LOAD_PLUGINS does; the built-ins are always loaded.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from promptomatix.errors import PluginError, PromptomatixError
from promptomatix.plugins import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "promptomatix"
BUILTINS = "promptomatix.builtins"
LOAD_ENV = "PROMPTOMATIX_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin: where it comes from and what it registered, by kind."""

    name: str
    distribution: str = ""
    version: str = ""
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, name: str) -> None:
        names = self.registered.setdefault(kind, [])
        if name not in names:
            names.append(name)


_INFO: dict[str, PluginInfo] = {}


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """Built once per process, on first use (never at import time); the built-ins are registered first."""
    from promptomatix.plugins import builtins

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtins, name=BUILTINS)
    _INFO[BUILTINS] = PluginInfo(BUILTINS, "promptomatix", _own_version())
    _load_entry_points(pm)
    return pm


def _own_version() -> str:
    from promptomatix import __version__

    return __version__


def _allowed() -> set[str] | None:
    value = os.environ.get(LOAD_ENV)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    allowed = _allowed()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, getattr(dist, "name", "") or "", getattr(dist, "version", "") or "")
        if ep.name in _INFO:
            _name_taken(info)
            continue
        _INFO[ep.name] = info
        try:
            pm.register(ep.load(), name=ep.name)
            pm.check_pending()  # a hook name with a typo ("register_backend") would register nothing, silently
        except (Exception, SystemExit) as e:  # an import error (or exit), a bad hook: recorded, never silent
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            info.error = f"{type(e).__name__}: {e}"
            log.warning("plugin %s failed to load: %s", ep.name, info.error)


def _name_taken(info: PluginInfo) -> None:
    """A second distribution's entry point with a name already loaded: recorded as not loaded (it was dropped
    without a word), unless it is the same distribution seen twice on the path."""
    first = _INFO[info.name]
    if first.distribution == info.distribution:
        return
    key = f"{info.name} ({info.distribution or 'unknown distribution'})"
    info.error = (f"its name {info.name!r} is taken by {first.distribution or 'promptomatix'}; "
                  "rename this entry point in its [project.entry-points.promptomatix] table")  # fmt: skip
    _INFO[key] = PluginInfo(key, info.distribution, info.version, info.error)
    log.warning("plugin %s %s", key, info.error)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin the manager knows, built-ins first, with what each registered so far."""
    plugin_manager()
    return list(_INFO.values())


def failed_plugins() -> list[PluginInfo]:
    return [i for i in plugin_infos() if i.error]


def run_register_hook(hook: str, kind: str, register: Callable[..., str]) -> None:
    """Call every implementation of `hook` in registration order (built-ins first) with a `register` callable.

    `register(*args, **kw)` returns the name it registered, which is recorded for the plugin (`promptomatix
    plugins`). An exception in a plugin's hook becomes a PluginError naming the plugin.
    """
    pm = plugin_manager()
    for impl in getattr(pm.hook, hook).get_hookimpls():
        plugin = impl.plugin_name
        info = _INFO.setdefault(plugin, PluginInfo(plugin))

        def bound(*args: Any, _info: PluginInfo = info, **kw: Any) -> Any:
            name = register(*args, plugin=_info.name, **kw)
            _info.note(kind, str(name))
            return name

        try:
            impl.function(register=bound)
        except PromptomatixError as e:
            raise PluginError(f"plugin {plugin}: {e.message}", hint=e.hint or fix_hint(plugin), plugin=plugin) from e
        except Exception as e:
            raise PluginError(f"plugin {plugin} failed in {hook}: {type(e).__name__}: {e}", hint=fix_hint(plugin),
                              plugin=plugin) from e  # fmt: skip


@contextmanager
def plugin_code(plugin: str, what: str) -> Iterator[None]:
    """Run a registered object's code: a plugin's failure becomes a PluginError naming the plugin, what failed
    and the fix (not "unexpected error: RuntimeError"); our errors and the built-ins' pass unchanged."""
    try:
        yield
    except PromptomatixError:
        raise
    except Exception as e:
        if not plugin or plugin == BUILTINS:
            raise
        from promptomatix.run_guard import one_line

        raise PluginError(f"plugin {plugin}: {what} failed: {one_line(f'{type(e).__name__}: {e}')}",
                          hint=fix_hint(plugin), plugin=plugin) from e  # fmt: skip


def fix_hint(plugin: str) -> str:
    if plugin == BUILTINS:
        return "this is a bug in promptomatix; please report it"
    return f"fix or uninstall the plugin, or leave it out with {LOAD_ENV}=<the plugins to load>"


def note_registration(plugin: str, kind: str, name: str) -> None:
    """Record something a plugin registered outside a `register` callable (CLI commands)."""
    _INFO.setdefault(plugin, PluginInfo(plugin)).note(kind, name)


def refresh_registries() -> None:
    """Rebuild every registry from the hooks on next use (after registering a plugin object in-process)."""
    for reset in _RESETS:
        reset()


def reset_for_tests() -> None:
    """Forget the manager and every registry built from it (tests that install plugins on the fly)."""
    plugin_manager.cache_clear()
    _INFO.clear()
    refresh_registries()


_RESETS: list[Callable[[], None]] = []


def on_reset(fn: Callable[[], None]) -> Callable[[], None]:
    """Registries built from hooks register their cache_clear here, so reset_for_tests() rebuilds them."""
    if fn not in _RESETS:
        _RESETS.append(fn)
    return fn
