"""Upstream's import path: `from promptomatix.main import process_input, generate_feedback, optimize_with_feedback,
save_feedback` (every upstream notebook starts with it). The names load lazily, as `promptomatix`'s own do, so
importing this module costs nothing until a function is used."""

from __future__ import annotations

_NAMES = ("process_input", "generate_feedback", "optimize_with_feedback", "save_feedback", "resume", "load_session",
          "list_sessions")  # fmt: skip

__all__ = list(_NAMES)

#: upstream functions with no namesake here, and what does their job.
REMOVED = {
    "download_session": "export it: `promptomatix sessions export SESSION_ID --format json`, or load_session(session_id)",
    "upload_session": "sessions live in PROMPTOMATIX_SESSIONS_DIR (or sessions_dir=); copy the session's directory "
    "there and load_session(session_id)",
    "load_session_from_file": "load_session(session_id, sessions_dir=DIR)",
    "optimize_with_synthetic_feedback": "generate_feedback(session_id), then optimize_with_feedback(session_id)",
}


def missing(module: str, name: str) -> AttributeError:
    """The AttributeError for `name`, naming the replacement of an upstream function that has none here."""
    if name in REMOVED:
        return AttributeError(f"upstream's {name} is not part of this API: use {REMOVED[name]}")
    return AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> object:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module("promptomatix.api"), name)
    raise missing("promptomatix.main", name)
