"""The plugin manager: the hook specifications, the built-ins, and every installed `promptomatix` entry point.

Built once per process, on first use. Building it imports the plugin modules and nothing heavy of ours (no DSPy,
no litellm). A plugin that fails to import is not silently dropped: it is recorded in `failed_plugins()`, logged,
shown by `promptomatix plugins`, and the CLI prints one warning line for it.

PROMPTOMATIX_LOAD_PLUGINS=name1,name2 loads only those entry points (an empty value loads none), as simonw/llm's
LLM_LOAD_PLUGINS does; the built-ins are always loaded. A name there that no installed plugin has is a warning
(`load_warnings()`), not silence: a typo would otherwise leave a plugin out without a word.
"""

from __future__ import annotations

import functools
import logging
import os
import time
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
#: A plugin import slower than this is named on stderr (`load_warnings`): the CLI's `--help` budget is 0.5 s.
SLOW_IMPORT_S = 0.2


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
_LOAD_WARNINGS: list[str] = []


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
    found = list(entry_points(group=ENTRY_POINT_GROUP))
    for ep in found:
        if allowed is not None and ep.name not in allowed:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, getattr(dist, "name", "") or "", getattr(dist, "version", "") or "")
        if ep.name in _INFO:
            _name_taken(info)
            continue
        _INFO[ep.name] = info
        try:
            started = time.perf_counter()
            _register_entry_point(pm, ep.name, ep.load)
            _check_import_time(ep.name, time.perf_counter() - started)
        except (Exception, SystemExit) as e:  # an import error (or exit), a bad hook: recorded, never silent
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            info.error = e.message if isinstance(e, PluginError) else f"{type(e).__name__}: {e}"
            log.warning("plugin %s failed to load: %s", ep.name, info.error)
    _check_allowed(allowed, [ep.name for ep in found])


def _register_entry_point(pm: pluggy.PluginManager, name: str, load: Callable[[], object]) -> None:
    """Import the entry point's object and register it. Its module already loaded under another entry point (two
    distributions naming the same module) is refused with both names: pluggy's own error was 400 characters of
    module reprs, and the first entry point took the credit for what the module registers."""
    plugin = load()
    holder = pm.get_name(plugin)
    if holder is not None:
        first = _INFO.get(holder, PluginInfo(holder))
        where = f" (from {first.distribution})" if first.distribution else ""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        raise PluginError(f"its module {module} is already loaded as entry point {holder}{where}; remove one of them",
                          plugin=name)  # fmt: skip
    pm.register(plugin, name=name)
    pm.check_pending()  # a hook name with a typo ("register_backend") would register nothing, silently
    if not pm.get_hookcallers(plugin):  # functions without our @hookimpl (or another project's marker)
        message = (f"plugin {name} implements no promptomatix hook, so it registers nothing; mark its hook "
                   "functions with @hookimpl from promptomatix.plugins")  # fmt: skip
        _LOAD_WARNINGS.append(message)
        log.warning("%s", message)


def _check_import_time(name: str, seconds: float) -> None:
    """A plugin whose import is slow (a module-level `import dspy`) is named: every command pays for it, `--help`
    included, and the user saw only a slow CLI (0.7 s for `--help` with its budget 0.5 s)."""
    if seconds <= SLOW_IMPORT_S:
        return
    message = (f"plugin {name} took {seconds:.1f} s to import, which every promptomatix command pays (--help too); "
               "its heavy imports belong inside its hook functions")  # fmt: skip
    _LOAD_WARNINGS.append(message)
    log.warning("%s", message)


def _check_allowed(allowed: set[str] | None, installed: list[str]) -> None:
    """A name in PROMPTOMATIX_LOAD_PLUGINS that no installed plugin has (a typo) is said once, with the names that
    are installed; it used to leave the plugin out silently, and the error after it did not say why."""
    unknown = sorted((allowed or set()) - set(installed))
    if not unknown:
        return
    names = ", ".join(repr(n) for n in unknown)
    have = ", ".join(sorted(set(installed))) or "none"
    message = f"{LOAD_ENV} names {names}, which no installed plugin has (installed plugins: {have}); ignored"
    _LOAD_WARNINGS.append(message)
    log.warning("%s", message)


def load_warnings() -> list[str]:
    """What loading the plugins found wrong that is no plugin's failure (a misspelled name in LOAD_ENV, a slow
    import)."""
    plugin_manager()
    return list(_LOAD_WARNINGS)


def _name_taken(info: PluginInfo) -> None:
    """A second distribution's entry point with a name already loaded: recorded as not loaded (it was dropped
    without a word), unless it is the same distribution seen twice on the path."""
    first = _INFO[info.name]
    if first.distribution == info.distribution:
        return
    key = f"{info.name} ({info.distribution or 'unknown distribution'})"
    holder = first.distribution or "promptomatix"
    if first.error:  # the first did not load either: "taken by" a plugin that is not there misled
        info.error = (f"its name {info.name!r} is also the entry point name of {holder}, which failed to load; "
                      "rename one of them in its [project.entry-points.promptomatix] table")  # fmt: skip
    else:
        info.error = (f"its name {info.name!r} is taken by {holder}; "
                      "rename this entry point in its [project.entry-points.promptomatix] table")  # fmt: skip
    _INFO[key] = PluginInfo(key, info.distribution, info.version, info.error)
    log.warning("plugin %s %s", key, info.error)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin the manager knows, built-ins first, with what each registered so far."""
    plugin_manager()
    return list(_INFO.values())


def failed_plugins() -> list[PluginInfo]:
    return [i for i in plugin_infos() if i.error]


def hook_impls(hook: str) -> list[Any]:
    """The implementations of `hook` in load order, the built-ins' first, whatever `tryfirst`/`trylast` say.

    pluggy lists `trylast` implementations first: a plugin marked so registered before the built-ins, took their
    names, and the clash was blamed on promptomatix.builtins. Each implementation of a register hook is called on
    its own, so the markers have nothing to order."""
    impls = getattr(plugin_manager().hook, hook).get_hookimpls()
    order = {name: i for i, name in enumerate(_INFO)}
    return sorted(impls, key=lambda impl: (impl.plugin_name != BUILTINS, order.get(impl.plugin_name, len(order))))


def run_register_hook(hook: str, kind: str, register: Callable[..., str]) -> None:
    """Call every implementation of `hook` in load order (built-ins first, `hook_impls`) with a `register` callable.

    `register(*args, **kw)` returns the name it registered, which is recorded for the plugin (`promptomatix
    plugins`). An exception in a plugin's hook becomes a PluginError naming the plugin; a PluginError that already
    names one (another plugin's, met while this hook built a registry it reads) keeps that plugin's name.
    """
    for impl in hook_impls(hook):
        plugin = impl.plugin_name
        info = _INFO.setdefault(plugin, PluginInfo(plugin))

        def bound(*args: Any, _info: PluginInfo = info, **kw: Any) -> Any:
            name = register(*args, plugin=_info.name, **kw)
            _info.note(kind, str(name))
            return name

        try:
            _call_register(impl, hook, bound)
        except PromptomatixError as e:
            if isinstance(e, PluginError) and e.plugin:  # re-blamed on this plugin, a healthy one was marked failed
                raise
            raise PluginError(f"plugin {plugin}: {e.message}", hint=e.hint or fix_hint(plugin), plugin=plugin) from e
        except Exception as e:
            raise PluginError(f"plugin {plugin} failed in {hook}: {type(e).__name__}: {e}", hint=fix_hint(plugin),
                              plugin=plugin) from e  # fmt: skip


def _call_register(impl: Any, hook: str, bound: Callable[..., Any]) -> None:
    """Call one register hook. A wrapper (`hookwrapper=True`, `wrapper=True`) or a generator function only builds a
    generator when called: its body never ran and the plugin registered nothing, without a word."""
    import inspect

    if getattr(impl, "hookwrapper", False) or getattr(impl, "wrapper", False):
        raise PluginError(f"plugin {impl.plugin_name}: its {hook} is marked as a hook wrapper, so it never "
                          "registers anything", hint="drop hookwrapper=True / wrapper=True from its @hookimpl",
                          plugin=impl.plugin_name)  # fmt: skip
    result = impl.function(register=bound)
    if inspect.isgenerator(result):
        result.close()
        raise PluginError(f"plugin {impl.plugin_name}: its {hook} is a generator (it has `yield`), so its body never "
                          "ran", hint="call register(...) without yield", plugin=impl.plugin_name)  # fmt: skip


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
    _LOAD_WARNINGS.clear()
    refresh_registries()


_RESETS: list[Callable[[], None]] = []


def on_reset(fn: Callable[[], None]) -> Callable[[], None]:
    """Registries built from hooks register their cache_clear here, so reset_for_tests() rebuilds them."""
    if fn not in _RESETS:
        _RESETS.append(fn)
    return fn
