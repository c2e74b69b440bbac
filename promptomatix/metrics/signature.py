"""The one check of a metric's shape, shared by user metrics, plugin metrics and task types: a metric is called as
fn(example, prediction), so one that cannot be is refused when it is given, before any model call. Light on
purpose (no metrics package import): task types use it while plugins register."""

from __future__ import annotations

import inspect
from typing import Any

from promptomatix.errors import MetricError, PromptomatixError


def check_metric_callable(fn: Any, what: str, error: type[PromptomatixError] = MetricError) -> None:
    """`fn` is callable as fn(example, prediction); else `error` naming `what` and the fix."""
    if not callable(fn):
        raise error(f"{what} is not callable: {type(fn).__name__} {fn!r}"[:200],
                    hint="pass a function fn(example, prediction) -> score in [0, 1]")  # fmt: skip
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError as e:
        raise error(f"{what} cannot be called as fn(example, prediction): {e}",
                    hint="give it two parameters: def metric(example, prediction) -> float") from None  # fmt: skip
    except ValueError:  # no signature to inspect (a builtin): its first call tells
        return
