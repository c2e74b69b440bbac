"""The store's errors that need more than one line to word: each names what is wrong and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptomatix.errors import SessionError
from promptomatix.sessions.fs import display
from promptomatix.sessions.models import Session


def corrupt_session(shown: str, session_id: str, where: str, why: str) -> SessionError:
    """The error for a session file that does not read (the store's, and a block read later by a follow-up)."""
    return SessionError(
        f"{shown} is corrupt ({where}): {why}; it was left untouched",
        hint=f"fix it by hand or delete it with `promptomatix sessions delete {session_id}`",
    )


def linked_session(session_id: str, entry: Path) -> SessionError:
    """A session entry that is a symbolic link: refused, naming the fix (delete removes the link only)."""
    try:
        inside = entry.resolve().parent == entry.parent
    except (OSError, RuntimeError):  # a link loop
        inside = False
    where = "to another entry of" if inside else "outside"
    return SessionError(
        f"session {session_id!r} is a symbolic link {where} {display(entry.parent)}, not a session directory; "
        "refusing to use it",
        hint=f"remove the link with `promptomatix sessions delete {session_id}`: it removes the link only, never "
        "what it points to",
    )


def no_versions(session: Session, live: dict[str, Any] | None) -> SessionError:
    """Nothing to export: say why (by status) and what continues the run."""
    sid = session.session_id
    if live:
        return SessionError(f"session {sid} has no prompt versions yet: a run is in progress (pid {live.get('pid')})",
                            hint="wait for it to save its first version")  # fmt: skip
    how = {"interrupted": "was interrupted", "failed": "failed", "running": "stopped (its process is gone)"}
    if session.status in how:
        return SessionError(
            f"session {sid} {how[session.status]} before any prompt version was saved",
            hint=f"continue it with `promptomatix resume {sid}`",
        )
    hint = None if session.status == "completed" else f"start it with `promptomatix resume {sid}`"
    return SessionError(f"session {sid} has no prompt versions yet", hint=hint)
