"""Custom metrics without editing the source (task types themselves: promptomatix.task.task_types).

A `MetricRegistry` maps a task-type name to a training metric and, optionally, a separate final-eval metric.
User code registers at import time into the module-level `default_registry` (that is what `--metric
module:function` does); a MetricsManager reads it unless given its own `registry=`. Nothing else writes to it.

A user metric is called as `fn(example, pred)` and may return a bool, a number in [0, 1], a MetricResult,
a `(score, feedback)` tuple, a mapping with "score"/"feedback", or an object with `.score`/`.feedback`
(e.g. a dspy.Prediction).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptomatix.errors import MetricError, PluginError
from promptomatix.metrics.result import MetricResult
from promptomatix.task.task_types import normalize_task_type_name

UserMetric = Callable[..., Any]


class MetricRegistry:
    """Thread-safe map: task type -> (training metric, final-eval metric or None)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._train: dict[str, UserMetric] = {}
        self._final: dict[str, UserMetric] = {}

    def register(self, task_type: str, fn: UserMetric, *, final: bool | UserMetric = False) -> UserMetric:
        """Register `fn` as the training metric (and final metric unless one is set), or final-only.

        `final=True` registers fn as the final-eval metric only; `final=<callable>` registers fn for training
        and the callable for final evaluation.
        """
        if not callable(fn):
            raise MetricError(f"metric for task type {task_type!r} is not callable: {fn!r}")
        key = normalize_task_type_name(task_type)
        with self._lock:
            if final is True:
                self._final[key] = fn
            else:
                self._train[key] = fn
                if callable(final):
                    self._final[key] = final
        return fn

    def metric(self, task_type: str, *, final: bool = False) -> Callable[[UserMetric], UserMetric]:
        """Decorator form of `register`."""

        def decorate(fn: UserMetric) -> UserMetric:
            return self.register(task_type, fn, final=final)

        return decorate

    def get(self, task_type: str, *, final: bool = False) -> UserMetric | None:
        """The registered metric; for final evaluation a final-only one wins, else the training one."""
        key = normalize_task_type_name(task_type)
        with self._lock:
            if final and key in self._final:
                return self._final[key]
            return self._train.get(key)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(set(self._train) | set(self._final))

    def unregister(self, task_type: str) -> None:
        key = normalize_task_type_name(task_type)
        with self._lock:
            self._train.pop(key, None)
            self._final.pop(key, None)


#: Registrations done at import by user code (and by `--metric module:function`).
default_registry = MetricRegistry()


@functools.cache
def plugin_metric_registry() -> MetricRegistry:
    """Metrics registered by plugins (`register_metrics`), built on first use; a MetricsManager consults it after
    its own registry, and a task type's own metric after both."""
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(plugin_metric_registry.cache_clear)
    registry = MetricRegistry()
    taken: set[tuple[str, str]] = set()  # (task type, "training" | "final"): one plugin, its own types only

    def register(task_type: str, fn: UserMetric, *, final: bool | UserMetric = False, plugin: str = "") -> str:
        _known_type(task_type)
        _check_plugin_metric(task_type, fn, final)
        key = normalize_task_type_name(task_type)
        _not_taken(key, plugin)
        slots = ["final"] if final is True else ["training", *(["final"] if callable(final) else [])]
        twice = [s for s in slots if (key, s) in taken]
        if twice:
            raise PluginError(f"the {twice[0]} metric for task type {key!r} is already registered by this plugin",
                              hint="register one metric per task type (and one final metric)")  # fmt: skip
        registry.register(task_type, fn, final=final)
        taken.update((key, s) for s in slots)
        return key

    run_register_hook("register_metrics", "metrics", register)
    return registry


def _check_plugin_metric(task_type: str, fn: Any, final: Any) -> None:
    """Callable as fn(example, prediction), and `final` a bool or such a callable (a string was ignored)."""
    from promptomatix.metrics.signature import check_metric_callable

    named = [("metric", fn)] + ([] if isinstance(final, bool) else [("final metric", final)])
    for what, f in named:
        check_metric_callable(f, f"{what} for task type {task_type!r}")


def _not_taken(key: str, plugin: str) -> None:
    """A plugin's metric may score only a task type the same plugin registered: any other type already has its
    scoring (a built-in scorer, or the metric of the plugin that owns it), and replacing it silently changed what
    every run of that type measured. There is no override from a plugin; a user's `--metric`, `metric=` or
    `register_metric(...)` still replaces it for their own runs."""
    from promptomatix.plugins.manager import BUILTINS
    from promptomatix.task.task_types import task_type_registry

    definition = task_type_registry().get(key)
    owner = definition.plugin if definition is not None else ""
    if definition is None or owner == plugin:
        return
    if owner in ("", BUILTINS):
        clash = f"the built-in {definition.scoring!r} scoring of that type ({BUILTINS})"
    else:
        clash = f"the scoring of plugin {owner}, which registered that type"
    raise PluginError(
        f"metric for task type {key!r} would replace {clash}; a plugin adds metrics only to task types it registers",
        hint="register a task type of your own (register_task_types, metric=fn), or use --metric module:function "
        "or register_metric(task_type, fn) for your own runs",
    )


def _known_type(task_type: str) -> None:
    """A plugin's metric for a type no plugin registered is never used (`clasification`): say so when it loads. A
    plugin adds a new type with `register_task_types`."""
    import difflib

    from promptomatix.task.task_types import task_type_registry

    types = task_type_registry()
    if types.get(task_type) is None:
        close = difflib.get_close_matches(str(task_type), types.names(), n=1)
        raise PluginError(
            f"metric for task type {task_type!r}: no such task type, so it would never be used",
            hint=(f"did you mean {close[0]!r}? " if close else "") + "register a new type with register_task_types",
        )


def register_metric(
    task_type: str,
    fn: UserMetric | None = None,
    *,
    final: bool | UserMetric = False,
    registry: MetricRegistry | None = None,
) -> Any:
    """Register a metric for a (possibly new) task type; without `fn`, return a decorator.

    `register_metric("tone", my_fn)` or `@register_metric("tone")` above a function.
    """
    reg = registry or default_registry
    if fn is None:
        if callable(final):
            raise MetricError("use register_metric(task_type, fn, final=final_fn), not the decorator form")
        return reg.metric(task_type, final=bool(final))
    return reg.register(task_type, fn, final=final)


def coerce_result(value: Any, name: str = "metric") -> MetricResult:
    """Turn whatever a user metric returned into a MetricResult, refusing values outside [0, 1]."""
    if isinstance(value, MetricResult):
        return value
    feedback = ""
    if isinstance(value, tuple) and len(value) == 2:
        value, feedback = value
    elif isinstance(value, Mapping) and "score" in value:
        value, feedback = value["score"], value.get("feedback", "")
    elif not isinstance(value, (bool, int, float)) and hasattr(value, "score"):
        value, feedback = value.score, getattr(value, "feedback", "") or ""
    if _numeric(value):  # numpy ints and bools, Decimal, Fraction too (they were refused)
        score = float(value)
    else:
        raise MetricError(f"{name} returned {value!r}; a metric must return a number in [0, 1] or a bool")
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise MetricError(f"{name} returned {score}, outside [0, 1]", hint="scale the score to [0, 1]")
    return MetricResult(score=score, feedback=str(feedback or ""))


def _numeric(value: Any) -> bool:
    return not isinstance(value, (str, bytes, complex)) and callable(getattr(value, "__float__", None))


def _metric_name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def _import_here_too(name: str) -> Any:
    """Import `name` as `python -m promptomatix` would, with the current directory on the path: the installed
    command puts its script's directory there instead, so `--metric mymet:m` beside mymet.py failed, with a hint
    to run from the directory that contains it."""
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(name)
    finally:
        if added:
            sys.path.remove(here)


def load_metric_spec(spec: str) -> UserMetric:
    """Import `module:function` (or `path/to/file.py:function`) and return the function.

    Raises MetricError with a one-line fix when the spec is malformed, the module cannot be imported or the
    attribute is missing or not callable.
    """
    example = "e.g. --metric mypackage.metrics:my_metric"
    module_name, sep, attr = spec.strip().rpartition(":")
    if not sep or not module_name or not attr:
        raise MetricError(f"bad metric spec {spec!r}: expected module:function", hint=example)
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise MetricError(f"metric file {module_name!r} not found", hint="check the path")
            mod_spec = importlib.util.spec_from_file_location(f"_promptomatix_metric_{path.stem}", path)
            if mod_spec is None or mod_spec.loader is None:
                raise MetricError(f"cannot load metric file {module_name!r}", hint=example)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[mod_spec.name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = _import_here_too(module_name)
    except MetricError:
        raise
    except SystemExit as exc:  # argparse at import, or sys.exit(): it ended the process without a word
        raise MetricError(
            f"importing metric module {module_name!r} exited (SystemExit: {exc.code})",
            hint="a metric module must not parse the command line or exit when imported; "
            "put that code under `if __name__ == '__main__':`",
        ) from None
    except ImportError as exc:
        raise MetricError(
            f"cannot import metric module {module_name!r}: {exc}",
            hint="run from the directory that contains it, add it to PYTHONPATH, or pip install it",
        ) from exc
    except Exception as exc:
        raise MetricError(
            f"importing metric module {module_name!r} failed: {type(exc).__name__}: {exc}",
            hint="fix the error in that module",
        ) from exc
    fn = getattr(module, attr, None)
    if fn is None:
        raise MetricError(f"module {module_name!r} has no attribute {attr!r}", hint="check the function name after ':'")
    if not callable(fn):
        raise MetricError(f"{spec!r} is not callable", hint="point --metric at a function")
    return fn
