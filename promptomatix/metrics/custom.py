"""User metrics (--metric, `metric=`, register_metric, a plugin's): their names, their signature check before any
model call, and the call itself, whose failure is one MetricError naming the metric rather than a 0 per row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from promptomatix.errors import MetricError, PromptomatixError
from promptomatix.metrics import text
from promptomatix.metrics.registry import coerce_result
from promptomatix.metrics.result import MetricResult
from promptomatix.metrics.signature import check_metric_callable


def metric_label(fn: Any) -> str:
    """`module:function` of a user metric, as the user would write it for --metric."""
    module = getattr(fn, "__module__", None) or "?"
    module = module.removeprefix("_promptomatix_metric_")
    return f"{module}:{getattr(fn, '__qualname__', None) or getattr(fn, '__name__', type(fn).__name__)}"


def check_metric_signature(fn: Callable[..., Any]) -> None:
    """A user metric (`--metric`, `metric=`): callable as fn(example, prediction), before any model call."""
    check_metric_callable(fn, f"metric {metric_label(fn)}")


def call_custom(fn: Callable[..., Any], key: str, example: Any, pred: Any) -> MetricResult:
    """A user metric that raises is a MetricError naming it, at the first example (not a 0 score per row).
    Its result is marked `user_metric`, so the evaluator ranks and reports by it (not by balanced accuracy)."""
    label = metric_label(fn)
    try:
        value = fn(example, pred)
    except PromptomatixError:  # a budget stop or a failed judge call inside the metric
        raise
    except (Exception, SystemExit) as e:  # SystemExit: it ended the process, the session left `running`
        raise MetricError(
            f"metric {label} raised {type(e).__name__}: {text.shorten(e, 200)}",
            hint="fix the metric; it is called as fn(example, prediction) and returns a number in [0, 1]",
        ) from e
    return replace(coerce_result(value, f"metric {label} (for {key!r})"), user_metric=True)


def check_metric_spec(spec: str) -> None:
    """`--metric`'s module or file exists, found without running it: a typo is a wrong command line (the CLI's exit
    2), while a module that exists and fails when imported stays the module's error (load_metric_spec's)."""
    import importlib.util
    import os
    import sys
    from pathlib import Path

    module_name, sep, attr = spec.strip().rpartition(":")
    if not sep or not module_name or not attr:
        raise MetricError(f"bad metric spec {spec!r}: expected module:function", hint="e.g. --metric mymetrics:score")
    if module_name.endswith(".py"):
        if not Path(module_name).is_file():
            raise MetricError(f"metric file {module_name!r} not found", hint="check the path")
        return
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)  # as load_metric_spec imports it (`python -m promptomatix` has it there)
    try:
        found = importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError as e:  # a parent package that does not exist, or one that imports a missing module
        found = not (e.name and (module_name + ".").startswith(e.name + "."))
    except ValueError:
        found = False  # a malformed dotted name ("..x")
    except Exception:
        found = True  # a parent package that fails when imported: load_metric_spec reports it, as before
    finally:
        if added:
            sys.path.remove(here)
    if not found:
        raise MetricError(f"no metric module {module_name!r}",
                          hint="pass module:function importable from here, or path/to/file.py:function")  # fmt: skip
