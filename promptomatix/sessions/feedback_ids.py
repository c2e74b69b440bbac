"""Feedback ids (`fb1`, `fb2`, ...) that are never given twice in a session, even after a delete.

The UI can delete feedback. An id picked as "count + 1" (or "highest left + 1") then came back for a new comment,
and an interrupted refine's checkpoint, which names its feedback by id, took the new comment for the deleted one:
`resume` sent the deleted text to the teacher and marked the unrelated new item applied. So the session keeps the
highest number it ever gave (`Session.feedback_seq`), and a session saved before that counter existed counts the
ids it still mentions anywhere (items, versions' `feedback_applied`, an unfinished run's checkpoint, the events).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptomatix.sessions.models import FeedbackItem, Session

_NUMBERED = re.compile(r"fb(\d{1,18})")
FEEDBACK_DELETED = "feedback_deleted"  # event: an item was deleted (its id stays taken)


def feedback_number(feedback_id: object) -> int | None:
    """N of an id `fbN`, else None (hand-written ids such as `note-1` take no number)."""
    match = _NUMBERED.fullmatch(feedback_id) if isinstance(feedback_id, str) else None
    return int(match.group(1)) if match else None


def _mentioned_ids(session: Session) -> list[Any]:
    """Every feedback id the session still mentions, deleted items' included where a record of them is left."""
    ids: list[Any] = [f.id for f in session.feedback]
    for v in session.versions:
        ids += v.feedback_applied
    checkpoint = session.progress.get("feedback_ids") if isinstance(session.progress, dict) else None
    if isinstance(checkpoint, list):  # an unfinished run names its feedback by id: `resume` reads them
        ids += checkpoint
    ids += [e.get("id") for e in session.events if e.get("kind") == FEEDBACK_DELETED]
    return ids


def highest_used(session: Session) -> int:
    """The highest feedback number the session ever gave, as far as it can tell."""
    numbers = [n for n in map(feedback_number, _mentioned_ids(session)) if n is not None]
    return max([session.feedback_seq, *numbers])


def take_feedback_id(session: Session) -> str:
    """The next unused id; it counts as used from now on (a deleted item's id is never given again)."""
    n = highest_used(session) + 1  # free: highest_used counts every item's number
    session.feedback_seq = n
    return f"fb{n}"


def delete_feedback(session: Session, item: FeedbackItem) -> None:
    """Remove `item` for good; its number stays used, and the event log says what was deleted."""
    session.feedback_seq = max(session.feedback_seq, feedback_number(item.id) or 0)
    session.feedback.remove(item)
    session.add_event(FEEDBACK_DELETED, id=item.id)
