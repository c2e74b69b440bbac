"""Feedback applied honestly: duplicates are not stored, and an item counts as applied only when the new version
visibly addresses it.

Seen: `feedback generate` stored three identical items, and `refine` reported "applied feedback: fb1…fb4" while
its only change was prefixing "1. ". The check here is deterministic (no model call): a span item is addressed
when the quoted words were rewritten or removed (a quote the refined prompt did not have, e.g. on an older
version, is judged as a general comment: that run did not remove it); a general item when the prompt changed in
substance (not only numbering, case, spacing or punctuation) and the new words take up the comment's own words,
or, for a comment asking for brevity, the prompt got clearly shorter. Anything else stays open, with the reason.
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


def _has_quote(quote: str, prompt: str) -> bool:
    return _substance(quote) in _substance(prompt)


def quote_missing(item: FeedbackItem, prompt: str) -> bool:
    """Whether `item` quotes words that `prompt` does not have (a span on an older version, since rewritten)."""
    return bool(item.text and _substance(item.text)) and not _has_quote(item.text or "", prompt)


def feedback_text(item: FeedbackItem, prompt: str | None = None) -> str:
    """How a feedback item reads to the optimizer's teacher. A quote that `prompt` (the one being refined) does not
    have says so: the teacher was told `On "criticizes": ...` about a prompt without that word."""
    if not item.text:
        return item.comment
    if prompt is not None and quote_missing(item, prompt):
        where = f"version {item.version}" if item.version is not None else "an earlier prompt"
        return f'On "{item.text}" (quoted from {where}; the prompt being refined no longer has it): {item.comment}'
    return f'On "{item.text}": {item.comment}'


def reads_as(item: FeedbackItem, sent: str) -> bool:
    """Whether `sent` (a text given to the optimizer) is `item` as it reads now: not edited since, not another item
    that was given a deleted item's id."""
    return sent in (feedback_text(item), feedback_text(item, ""))


def _general(item: FeedbackItem, old: str, new: str, added: set[str]) -> tuple[bool, str]:
    """A comment on the whole prompt: addressed when the prompt got clearly shorter as asked, or takes up its words."""
    if _SHORTER.search(item.comment) and len(new.split()) <= 0.85 * len(old.split()):
        return True, f"the prompt went from {len(old.split())} to {len(new.split())} words"
    if shared := sorted(added & _content_words(item.comment)):
        return True, f"the new wording takes up {', '.join(shared[:4])}"
    return False, "the change does not take up what the comment asks for"


def _judge(item: FeedbackItem, old: str, new: str, added: set[str]) -> FeedbackOutcome:
    if item.text and quote_missing(item, old):  # already gone before this run: judged as a general comment
        addressed, why = _general(item, old, new, added)
        return FeedbackOutcome(item.id, addressed, f"its quoted words were not in the refined prompt; {why}")
    if item.text and _substance(item.text) and _has_quote(item.text, new):
        # the span is still there: addressed only if the change adds what the comment asks for ("also ...")
        if shared := sorted(added & _content_words(item.comment)):
            why = f"the quoted words stay and the new wording adds {', '.join(shared[:4])}"
            return FeedbackOutcome(item.id, True, why)
        return FeedbackOutcome(item.id, False, f"the quoted words {item.text[:40]!r} are unchanged")
    if item.text:
        return FeedbackOutcome(item.id, True, "the quoted words were rewritten or removed")
    return FeedbackOutcome(item.id, *_general(item, old, new, added))


def check_addressed(items: Iterable[FeedbackItem], old: str, new: str) -> list[FeedbackOutcome]:
    """For each item: does `new` (the new version's prompt) address it, compared with `old` (the one refined)?"""
    if _substance(old) == _substance(new):
        why = "the prompt did not change beyond numbering, case or spacing"
        return [FeedbackOutcome(item.id, False, why) for item in items]
    added = _content_words(new) - _content_words(old)
    return [_judge(item, old, new, added) for item in items]


def _unseen(session: Session, ids: list[str], sent: dict[str, str] | None) -> dict[str, str]:
    """Why each of `ids` cannot be applied as it stands: deleted, or changed since the optimizer was given it."""
    present = {f.id: f for f in session.feedback}
    out: dict[str, str] = {}
    for fid in ids:
        if fid not in present:
            out[fid] = f"feedback {fid}: not applied (it was deleted while the run was using it)"
        elif sent is not None and fid in sent and not reads_as(present[fid], sent[fid]):
            out[fid] = (f"feedback {fid}: left open (it was edited while the run was using it; the optimizer saw the "
                        "earlier text, so refine again to apply the new one)")  # fmt: skip
    return out


def applied_feedback(
    session: Session, ids: list[str], old: str, new: str, *, uses_feedback: bool = True,
    sent: dict[str, str] | None = None,
) -> tuple[list[str], list[str]]:  # fmt: skip
    """The ids to mark applied and one report line per item; items not addressed stay open.
    `uses_feedback=False` (an optimizer that never reads feedback, e.g. dspy's MIPROv2): every item stays open.
    `sent`: the text each id was given to the optimizer as; an item deleted or edited since then is not applied."""
    unseen = _unseen(session, ids, sent)
    items = [session.get_feedback(i) for i in ids if i not in unseen]
    if not uses_feedback:
        outcomes = [FeedbackOutcome(i.id, False, "this optimizer does not read feedback; left open") for i in items]
    else:
        outcomes = check_addressed(items, old, new)
    lines = {o.id: o.line() for o in outcomes} | unseen
    return [o.id for o in outcomes if o.addressed], [lines[i] for i in ids if i in lines]
