"""Reading fields of examples and predictions generically: dicts, dspy.Example/Prediction and plain objects all
work without importing DSPy here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MISSING: Any = object()


def get_field(obj: Any, name: str) -> Any:
    """obj[name] for mappings and dspy.Example/Prediction, else getattr; MISSING when absent or None."""
    value = MISSING
    if isinstance(obj, Mapping):
        value = obj.get(name, MISSING)
    elif hasattr(obj, "__getitem__") and not isinstance(obj, (str, bytes, list, tuple)):
        try:
            value = obj[name]
        except (KeyError, IndexError, TypeError, AttributeError):
            value = MISSING
    if value is MISSING:
        try:
            value = getattr(obj, name)
        except AttributeError:
            value = MISSING
    return MISSING if value is None or callable(value) else value


def record_items(obj: Any) -> dict[str, Any]:
    """All fields of a dict, dspy.Example or plain object, as a dict."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "toDict"):
        return dict(obj.toDict())
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")} if hasattr(obj, "__dict__") else {}
