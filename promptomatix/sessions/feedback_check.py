"""Feedback applied honestly: duplicates are not stored, and an item counts as applied only when the new version
visibly addresses it.

Seen: `feedback generate` stored three identical items, and `refine` reported "applied feedback: fb1…fb4" while
its only change was prefixing "1. ". The check here is deterministic (no model call): a span item is addressed
when the quoted words were rewritten or removed; a general item when the prompt changed in substance (not only
numbering, case, spacing or punctuation) and the new words take up the comment's own words, or, for a comment
asking for brevity, the prompt got clearly shorter. Anything else stays open, with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from promptomatix.sessions.models import FeedbackItem, Session

_LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+", re.M)
_SHORTER = re.compile(r"\b(short|shorter|concise|brief|briefer|verbose|wordy|too long|fewer words|trim|cut)\b", re.I)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "are",
        "be",
        "it",
        "this",
        "that",
        "as",
        "at",
        "by",
        "from",
        "not",
        "no",
        "but",
        "if",
        "then",
        "so",
        "do",
        "does",
        "should",
        "must",
        "can",
        "could",
        "would",
        "will",
        "more",
        "less",
        "very",
        "too",
        "also",
        "prompt",
        "model",
        "answer",
        "please",
        "make",
        "use",
    ]
)


@dataclass(frozen=True)
class FeedbackOutcome:
    """Whether one feedback item is addressed by the new version, and why."""

    id: str
    addressed: bool
    why: str

    def line(self) -> str:
        return f"feedback {self.id}: {'addressed' if self.addressed else 'not addressed'} ({self.why})"


def _substance(text: str) -> str:
    """The prompt without list numbering, case, punctuation or spacing differences."""
    return " ".join(re.findall(r"\w+", _LIST_MARK.sub("", text).lower()))


def _content_words(text: str) -> set[str]:
    return {w[:6] for w in re.findall(r"[a-z]{3,}", text.lower()) if w not in _STOP}


def _same_item(a: str, b: str) -> bool:
    return _substance(a) == _substance(b)


def distinct_feedback(session: Session, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(quote, comment) pairs minus those already open in the session or repeated in the list itself."""
    seen = [(f.text or "", f.comment) for f in session.feedback if f.status == "open"]
    out: list[tuple[str, str]] = []
    for quote, comment in pairs:
        if any(_same_item(comment, c) and _same_item(quote, q) for q, c in [*seen, *out]):
            continue
        out.append((quote, comment))
    return out


def check_addressed(items: Iterable[FeedbackItem], old: str, new: str) -> list[FeedbackOutcome]:
    """For each item: does `new` (the new version's prompt) address it, compared with `old` (the one it was on)?"""
    out = []
    changed = _substance(old) != _substance(new)
    added = _content_words(new) - _content_words(old)
    for item in items:
        if not changed:
            out.append(FeedbackOutcome(item.id, False, "the prompt did not change beyond numbering, case or spacing"))
        elif item.text and _substance(item.text) and _substance(item.text) in _substance(new):
            # the span is still there: addressed only if the change adds what the comment asks for ("also ...")
            if shared := sorted(added & _content_words(item.comment)):
                why = f"the quoted words stay and the new wording adds {', '.join(shared[:4])}"
                out.append(FeedbackOutcome(item.id, True, why))
            else:
                out.append(FeedbackOutcome(item.id, False, f"the quoted words {item.text[:40]!r} are unchanged"))
        elif item.text:
            out.append(FeedbackOutcome(item.id, True, "the quoted words were rewritten or removed"))
        elif _SHORTER.search(item.comment) and len(new.split()) <= 0.85 * len(old.split()):
            out.append(FeedbackOutcome(item.id, True, f"the prompt went from {len(old.split())} to "
                                                      f"{len(new.split())} words"))  # fmt: skip
        elif shared := sorted(added & _content_words(item.comment)):
            out.append(FeedbackOutcome(item.id, True, f"the new wording takes up {', '.join(shared[:4])}"))
        else:
            out.append(FeedbackOutcome(item.id, False, "the change does not take up what the comment asks for"))
    return out


def applied_feedback(
    session: Session, ids: list[str], old: str, new: str, *, uses_feedback: bool = True
) -> tuple[list[str], list[str]]:
    """The ids to mark applied and one report line per item; items not addressed stay open.
    `uses_feedback=False` (an optimizer that never reads feedback, e.g. dspy's MIPROv2): every item stays open."""
    items = [session.get_feedback(i) for i in ids]
    if not uses_feedback:
        lines = [FeedbackOutcome(i.id, False, "this optimizer does not read feedback; left open").line() for i in items]
        return [], lines
    outcomes = check_addressed(items, old, new)
    return [o.id for o in outcomes if o.addressed], [o.line() for o in outcomes]
