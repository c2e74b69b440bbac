"""Session ids: generated, time-sortable, and too strict to ever name a path outside the store."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone

from promptomatix.errors import SessionError

# Letters, digits, '-' and '_' only; starts with a letter or digit; at most 64 characters.
# No dots and no separators, so '..', 'a/b', '/etc' and 'C:\\x' are all impossible.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)
ID_EXAMPLE = "20261122-043012-3f9a1c"


def new_id(now: datetime | None = None) -> str:
    """A new id like ``20261122-043012-3f9a1c``: UTC time to the second, then 24 random bits.

    Ids sort by creation time as plain strings, which is what `promptomatix sessions list` shows.
    """
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{moment:%Y%m%d-%H%M%S}-{os.urandom(3).hex()}"


def is_valid_id(session_id: object) -> bool:
    return (
        isinstance(session_id, str)
        and ID_PATTERN.fullmatch(session_id) is not None
        and session_id.lower() not in _WINDOWS_RESERVED
    )


def validate_id(session_id: object) -> str:
    """Return `session_id` if it is a well-formed id, else raise SessionError naming the expected shape."""
    if not is_valid_id(session_id):
        shown = repr(session_id)
        if len(shown) > 80:  # a 5,000-character argument still gives a one-line error
            shown = f"{shown[:60]}…' ({len(session_id) if isinstance(session_id, str) else '?'} characters)"
        raise SessionError(
            f"invalid session id {shown}: ids look like {ID_EXAMPLE}", hint="see `promptomatix sessions list`"
        )
    return session_id
