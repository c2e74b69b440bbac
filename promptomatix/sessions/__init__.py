"""Sessions: the on-disk record of a task, its prompt versions, and the feedback on them."""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Where each public name lives. Imported on first use (PEP 562): the scrubber (`secrets`) is needed by startup
# warnings and error lines, and must not pull in the session models (pydantic) on every `promptomatix --help`.
_HOMES = {
    **dict.fromkeys(
        ["add_feedback", "attach_feedback", "dismiss_feedback", "list_feedback", "mark_applied", "save_feedback"],
        "feedback",
    ),
    **dict.fromkeys(["new_id", "validate_id"], "ids"),
    **dict.fromkeys(
        [
            *("SCHEMA_VERSION", "FeedbackItem", "PromptVersion", "Score", "Session", "SessionStatus"),
            *("SessionSummary", "TestScore", "Usage"),
        ],
        "models",
    ),
    **dict.fromkeys(["scrub", "scrub_text", "strip_url_credentials"], "secrets"),
    **dict.fromkeys(["SESSIONS_DIR_ENV", "SessionStore"], "store"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)


__all__ = sorted(_HOMES)
