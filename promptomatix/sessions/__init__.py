"""Sessions: the on-disk record of a task, its prompt versions, and the feedback on them."""

from __future__ import annotations

from promptomatix.sessions.feedback import (
    add_feedback,
    attach_feedback,
    dismiss_feedback,
    list_feedback,
    mark_applied,
    save_feedback,
)
from promptomatix.sessions.ids import new_id, validate_id
from promptomatix.sessions.models import (
    SCHEMA_VERSION,
    FeedbackItem,
    PromptVersion,
    Score,
    Session,
    SessionStatus,
    SessionSummary,
    TestScore,
    Usage,
)
from promptomatix.sessions.secrets import scrub, scrub_text, strip_url_credentials
from promptomatix.sessions.store import SESSIONS_DIR_ENV, SessionStore

__all__ = [
    "SCHEMA_VERSION",
    "SESSIONS_DIR_ENV",
    "FeedbackItem",
    "PromptVersion",
    "Score",
    "Session",
    "SessionStatus",
    "SessionStore",
    "SessionSummary",
    "TestScore",
    "Usage",
    "add_feedback",
    "attach_feedback",
    "dismiss_feedback",
    "list_feedback",
    "mark_applied",
    "new_id",
    "save_feedback",
    "scrub",
    "scrub_text",
    "strip_url_credentials",
    "validate_id",
]
