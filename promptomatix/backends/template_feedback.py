"""The reviewer's feedback in every teacher template, placed where a user's template keeps its structure."""

from __future__ import annotations

import re

FEEDBACK_HEADER = "Reviewer feedback the new prompt must keep to:"  # a rewrite that copies it is refused
_SHOWS_FEEDBACK = re.compile(r"(?<!\$)\$(?:feedback\b|\{feedback\})")
_REPLY_LINE = re.compile(r"\bjson\b|\{\s*\"prompt\"", re.IGNORECASE)


def with_feedback(template: str, has_feedback: bool) -> str:
    """A template that does not show the reviewer's feedback (add_format, compress, often a user's) gets it when
    there is some: a refine run's every rewrite must keep to it (a shorter rewrite that dropped what the reviewer
    asked for won at equal quality, and the feedback was left unaddressed). It goes before a last line that asks
    for the JSON reply, else after the whole template, never inside the user's own structure."""
    if not has_feedback or _SHOWS_FEEDBACK.search(template):
        return template
    section = f"{FEEDBACK_HEADER}\n$feedback\n"
    lines = template.rstrip().split("\n")
    at = len(lines) - 1 if _REPLY_LINE.search(lines[-1]) else len(lines)
    while 0 < at < len(lines) and _REPLY_LINE.search(lines[at - 1]) and lines[at - 1].rstrip().endswith(":"):
        at -= 1  # "Reply as JSON, exactly like this:" above its example stays with it
    if at == 0:
        return f"{section}\n{template}"
    return "\n".join([*lines[:at], "", section, *lines[at:]]).rstrip() + "\n"
