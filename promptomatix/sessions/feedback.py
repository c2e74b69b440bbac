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
    General feedback: give neither. The same open item given again is returned, not stored twice.
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
    same = (comment.strip(), source, text, start, end, number, dict(details or {}))
    if (old := open_twin(session, same)) is not None:  # a re-run notebook cell or a double submit: not a copy
        return old
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


def _key(item: FeedbackItem) -> tuple[Any, ...]:
    return (item.comment, item.source, item.text, item.start, item.end, item.version, item.details)


def open_twin(session: Session, key: FeedbackItem | tuple[Any, ...]) -> FeedbackItem | None:
    """The open item that says the same (comment, source, span, version and quote) as `key`, if any."""
    want = _key(key) if isinstance(key, FeedbackItem) else key
    return next((f for f in session.feedback if f.status == "open" and f is not key and _key(f) == want), None)


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

    The quote and offsets must describe a span (`end - start == len(text)`); impossible ones are refused, not
    stored. `("", 0, 0)` is a comment on the whole prompt (general feedback). Offsets counted in `r["result"]` (prompt text) differ from the stored prompt's (the transcript the
    model reads), so the quote is then located there; a quote found only in `r["result"]` (it spans a demo's
    lines) is kept as general feedback quoting it, and one found in neither is refused.
    """
    _check_upstream_span(text, start_offset, end_offset)
    store = store or SessionStore()
    general = text == "" and start_offset == end_offset == 0  # ("", 0, 0): a comment on the whole prompt
    try:
        if general:
            item = add_feedback(store, prompt_id, comment=feedback)
        else:
            item = add_feedback(store, prompt_id, comment=feedback, text=text, start=start_offset, end=end_offset)
    except ConfigurationError:
        if general or not isinstance(feedback, str) or not feedback.strip():
            raise
        item = _located(store, prompt_id, feedback, text, start_offset, end_offset)
    return {
        "id": item.id,
        "text": text,
        "start_offset": start_offset,
        "end_offset": end_offset,
        "feedback": item.comment,
        "prompt_id": prompt_id,
        "created_at": item.created_at.isoformat(),
    }


def _check_upstream_span(text: object, start: object, end: object) -> None:
    """What no prompt could have: a quote that is not text, offsets that are not a span of its length."""
    if text == "" and start == end == 0:
        return
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError(
            f"span feedback text must be the quoted part of the prompt (a non-empty string), got {text!r}"[:200],
            hint="for a comment on the whole prompt pass text='' with offsets 0, 0",
        )  # fmt: skip
    if not (_is_int(start) and _is_int(end)):
        raise ConfigurationError(f"span offsets must be integers, got start_offset={start!r} end_offset={end!r}")
    assert isinstance(start, int) and isinstance(end, int)  # for the type checker: _is_int said so
    if start < 0 or end - start != len(text):
        raise ConfigurationError(
            f"span {start}:{end} cannot hold the quoted text ({len(text)} characters)",
            hint="end_offset - start_offset must equal len(text), both counted from 0",
        )


def _located(store: SessionStore, sid: str, comment: str, text: str, start: int, end: int) -> FeedbackItem:
    """Offsets that do not match the stored prompt: the quote located in it, or, when it quotes `r["result"]`'s
    text only, kept as general feedback with the quote in `details`; a quote found in neither is refused."""
    from promptomatix.result import _prompt_text_of

    session = store.load(sid)
    latest = session.latest_version() if session.versions else None
    if latest is None:
        raise ConfigurationError(f"session {sid} has no prompt yet, so a span cannot be quoted")
    shown = _prompt_text_of(session, latest) or ""
    if end > max(len(latest.prompt), len(shown)):
        raise ConfigurationError(f"span {start}:{end} is past the end of session {sid}'s latest prompt "
                                 f"({len(shown)} characters as r['result'] reads)")  # fmt: skip
    if text in latest.prompt:
        logger.info("feedback offsets %s:%s are not the stored prompt's; located the quoted text", start, end)
        return add_feedback(store, sid, comment=comment, text=text)
    if text in shown:
        quoted = {"quoted": text, "start_offset": start, "end_offset": end}
        return add_feedback(store, sid, comment=comment, details=quoted)
    raise ConfigurationError(
        f"text {_short(text)!r} does not occur in session {sid}'s latest prompt (version {latest.version})",
        hint="quote part of r['result'] (or r.best_prompt) of that session's latest run",
    )
