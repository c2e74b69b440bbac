"""Human and generated feedback on prompt versions, persisted in the session.

Upstream kept feedback in a process-local list (lost on exit) and ignored span offsets. Here a span
is validated against the exact prompt of the version it refers to, every item is stored in the
session file, and its status records whether (and in which version) it was applied.

`attach_feedback`, `mark_applied` and `dismiss_feedback` change a `Session` in memory (use them inside
`SessionStore.update` to batch); `add_feedback` is the one-call form that persists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.sessions.models import FeedbackItem, FeedbackSource, FeedbackStatus, Session
from promptomatix.sessions.store import SessionStore

logger = logging.getLogger(__name__)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def attach_feedback(
    session: Session,
    *,
    comment: str,
    text: str | None = None,
    start: int | None = None,
    end: int | None = None,
    version: int | None = None,
    source: FeedbackSource = "human",
    details: dict[str, Any] | None = None,
) -> FeedbackItem:
    """Validate feedback against `version` (default: latest) of `session` and append it (in memory).

    Span feedback: give `start`/`end` (0 <= start < end <= len(prompt)), or just `text`, which is then
    located in the prompt (first occurrence; pass offsets to pick another). With both, they must agree.
    General feedback: give neither.
    """
    if not isinstance(comment, str) or not comment.strip():
        raise ConfigurationError("feedback comment is empty; say what should change")
    if source not in ("human", "generated"):
        raise ConfigurationError(f"feedback source must be 'human' or 'generated', not {source!r}")
    is_span = text is not None or start is not None or end is not None
    number: int | None = None
    if session.versions or version is not None:
        target = session.get_version(version)  # SessionError naming the versions that exist
        number, prompt = target.version, target.prompt
    elif is_span:
        raise ConfigurationError(f"session {session.session_id} has no prompt yet, so a span cannot be quoted")

    if is_span:
        start, end, text = _resolve_span(prompt, number, text, start, end)
    item = FeedbackItem(
        id=session.next_feedback_id(),
        comment=comment.strip(),
        source=source,
        text=text,
        start=start,
        end=end,
        version=number,
        details=dict(details or {}),
    )
    session.feedback.append(item)
    from promptomatix.plugins.events import emit  # run event for plugins (logging, webhooks, tracking)

    emit("feedback_added", session.session_id, **item.model_dump(mode="json"))
    return item


def _check_text(text: object) -> None:
    if text is not None and not isinstance(text, str):
        raise ConfigurationError(f"span feedback text must be a string, got {type(text).__name__}")


def _resolve_span(
    prompt: str, number: int | None, text: str | None, start: int | None, end: int | None
) -> tuple[int, int, str]:
    where = f"version {number}'s prompt"
    _check_text(text)
    if start is None and end is None:
        if not text:
            raise ConfigurationError("span feedback text is empty; quote part of the prompt or omit it")
        found = prompt.find(text)
        if found < 0:
            raise ConfigurationError(f"text {_short(text)!r} does not occur in {where}")
        return found, found + len(text), text
    if start is None or end is None:
        raise ConfigurationError("span feedback needs both start and end (or only the quoted text)")
    if not (_is_int(start) and _is_int(end)):
        raise ConfigurationError(f"span offsets must be integers, got start={start!r} end={end!r}")
    if not 0 <= start < end <= len(prompt):
        raise ConfigurationError(f"span {start}:{end} is not inside {where} (need 0 <= start < end <= {len(prompt)})")
    quoted = prompt[start:end]
    if text is not None and text != quoted:
        raise ConfigurationError(
            f"text {_short(text)!r} does not match {where} at {start}:{end}, which is {_short(quoted)!r}"
        )
    return start, end, quoted


def add_feedback(
    store: SessionStore,
    session_id: str,
    *,
    comment: str,
    text: str | None = None,
    start: int | None = None,
    end: int | None = None,
    version: int | None = None,
    source: FeedbackSource = "human",
    details: dict[str, Any] | None = None,
) -> FeedbackItem:
    """Validate and persist one feedback item (under the session lock, so concurrent adds all land)."""
    added: list[FeedbackItem] = []

    def apply(session: Session) -> None:
        added.append(
            attach_feedback(
                session,
                comment=comment,
                text=text,
                start=start,
                end=end,
                version=version,
                source=source,
                details=details,
            )
        )

    store.update(session_id, apply)
    return added[0]


def list_feedback(
    session: Session,
    status: FeedbackStatus | None = None,
    *,
    source: FeedbackSource | None = None,
    version: int | None = None,
) -> list[FeedbackItem]:
    """Feedback items in the order given, optionally filtered by status, source and target version."""
    return [
        f
        for f in session.feedback
        if (status is None or f.status == status)
        and (source is None or f.source == source)
        and (version is None or f.version == version)
    ]


def mark_applied(session: Session, ids: Iterable[str], version: int) -> list[FeedbackItem]:
    """Mark items as applied in `version` and record them on that version (in memory).

    An already-applied item moves to the newer version; a dismissed one is revived (the user chose it).
    """
    target = session.get_version(version)
    items = [session.get_feedback(fid) for fid in ids]
    for item in items:
        if item.version is not None and item.version > version:
            raise SessionError(
                f"feedback {item.id} is about version {item.version}; "
                f"it cannot be applied in the earlier version {version}"
            )
    for item in items:
        item.status = "applied"
        item.applied_in = target.version
        if item.id not in target.feedback_applied:
            target.feedback_applied.append(item.id)
    return items


def dismiss_feedback(session: Session, ids: Iterable[str]) -> list[FeedbackItem]:
    """Mark open items as dismissed (kept for the record, no longer offered to the optimizer)."""
    items = [session.get_feedback(fid) for fid in ids]
    for item in items:
        if item.status == "applied":
            raise SessionError(f"feedback {item.id} was already applied in version {item.applied_in}")
    for item in items:
        item.status = "dismissed"
    return items


def save_feedback(
    text: str,
    start_offset: int,
    end_offset: int,
    feedback: str,
    prompt_id: str,
    store: SessionStore | None = None,
) -> dict[str, Any]:
    """Upstream-compatible `save_feedback`: `prompt_id` is a session id; returns upstream's dict shape.

    Upstream ignored the offsets, so old callers may pass ones that do not match; then the text is
    located in the latest prompt, and failing that the item is stored as general feedback (with the
    quoted text kept in `details`) rather than rejected.
    """
    _check_text(text)  # before the fallbacks below, which would store it as a quote
    store = store or SessionStore()
    try:
        item = add_feedback(store, prompt_id, comment=feedback, text=text, start=start_offset, end=end_offset)
    except ConfigurationError:
        if not isinstance(feedback, str) or not feedback.strip():
            raise
        logger.warning("feedback offsets %s:%s do not match the prompt; locating the text", start_offset, end_offset)
        try:
            item = add_feedback(store, prompt_id, comment=feedback, text=text or None)
        except ConfigurationError:
            quoted = {"quoted": text, "start_offset": start_offset, "end_offset": end_offset}
            item = add_feedback(store, prompt_id, comment=feedback, details=quoted)
    return {
        "id": item.id,
        "text": text,
        "start_offset": start_offset,
        "end_offset": end_offset,
        "feedback": item.comment,
        "prompt_id": prompt_id,
        "created_at": item.created_at.isoformat(),
    }
