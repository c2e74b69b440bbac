"""Rejection rules for candidates, applied before any scoring: a degenerate prompt must not win by luck.

Seen winning on the embedded 135M model: "Write a different prompt for the same task that includes the label,
which is either" (meta-prompt text, cut off), "How to determine the sentiment of a movie review with a positive
or negative sentiment label (positive or negative)," (a question, a fragment), and prompts that had lost their
label line. On 8-12 valid rows such a prompt can tie or beat the initial one on luck and the length penalty.
Each rule returns a short reason that is recorded on the candidate.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from promptomatix.backends.contract import labels_of, missing_labels, names, without_contract

if TYPE_CHECKING:
    from promptomatix.backends.prompt import PromptCandidate
    from promptomatix.task.models import TaskSpec

#: Words a complete instruction does not end on ("... which is either", "... positive or").
_DANGLING = frozenset(
    {
        "a", "an", "the", "and", "or", "either", "nor", "but", "of", "to", "with", "which", "that", "is", "are",
        "was", "be", "as", "for", "by", "in", "on", "at", "from", "than", "into", "about", "like", "such",
        "whether", "if", "when", "while", "because", "its", "their", "your",
    }
)  # fmt: skip
_QUESTION_START = re.compile(
    r"^\s*(how|why|what (is|are) the best|can you|could you|would you|will you|do you|should i|what should)\b", re.I
)
_META = re.compile(
    r"\b(write|rewrite|give|create) (a|an|the)? ?(different|better|new|shorter|improved)? ?prompt\b"
    r"|\bthe (new|current|improved|shorter) prompt\b|\breply as json\b|\bfor the same task\b"
    r"|\breviewer feedback\b|\bearlier prompts\b|\bimprove prompts\b|\bmeta-?prompt\b"
    r"|\bmistakes the current\b|\bexamples the current prompt\b",
    re.I,
)
_PLACEHOLDER = re.compile(
    r"\[[A-Za-z_][^\[\]\n]{0,40}\]|\{[A-Za-z_]\w{0,30}\}|<[A-Za-z_][^<>]{0,60}>|\$\{?[A-Za-z_]\w*\}?"
    r"|\bplaceholder\b|\blorem ipsum\b|\bTODO\b|\bXXX\b|_{3,}",
    re.I,
)


def fragment(text: str, initial: str = "") -> str | None:
    """An unfinished sentence: too short, a new line that ends on a connective or a comma, or an open bracket."""
    words = re.findall(r"[\w'-]+", text)
    if len(words) < 3:
        return "a fragment: fewer than three words"
    old = {line.strip() for line in initial.split("\n")}
    for line in (ln.rstrip() for ln in text.split("\n")):
        if not line.strip() or line.strip() in old:
            continue
        last = re.findall(r"[\w'-]+", line)[-1:] or [""]
        if line.endswith((",", ";", "(", "-", "—")):
            return f"a fragment: a line ends with {line[-1]!r}"
        if line[-1:].isalnum() and last[0].lower() in _DANGLING:
            return f"a fragment: a line ends on {last[0]!r}"
        if line.count("(") != line.count(")") or line.count('"') % 2:
            return "a fragment: an unclosed bracket or quote"
    return None


def question(text: str) -> str | None:
    """A question to the model about how to do the task, instead of an instruction to do it."""
    first = re.split(r"(?<=[.!?])\s+|\n", text.strip(), maxsplit=1)[0]
    if _QUESTION_START.match(first):
        return "a question to the model, not an instruction"
    return None


def meta_copy(text: str, initial: str) -> str | None:
    """Text of the meta-prompt (how to write a prompt), not an instruction for the task."""
    m = _META.search(text)
    if m and not _META.search(initial):
        return f"copies the meta-prompt ({m.group(0).strip()!r})"
    return None


def placeholder(text: str, initial: str) -> str | None:
    """Template slots left unfilled: [noun_1], {name}, <the new prompt>, $current_prompt."""
    for m in _PLACEHOLDER.finditer(text):
        if m.group(0) not in initial:
            return f"a placeholder ({m.group(0)!r})"
    return None


def dropped_content(cand: PromptCandidate, spec: TaskSpec, initial: PromptCandidate) -> str | None:
    """The task's own content is gone: a label or the output-format line the initial prompt had."""
    text, before = cand.system_text(), initial.system_text()
    lost = [lab for lab in missing_labels(text, spec) if names(before, lab)]
    if lost:
        return f"drops the label{'s' if len(lost) > 1 else ''} {', '.join(lost)}"
    fmt = (spec.output_format or "").strip()
    if fmt and fmt.lower() in before.lower() and fmt.lower() not in text.lower():
        return "drops the output-format line"
    return None


#: Words any instruction for a task may use without naming its topic ("decide", "label", "answer").
_OFF_TOPIC_MIN_WORDS = 4
_TASK_TALK = "task input output answer label category class classify classification decide choose pick identify"


def off_topic(cand: PromptCandidate, spec: TaskSpec, initial: PromptCandidate) -> str | None:
    """Its own words (the label and format lines aside) say nothing about the task: seen winning on intents, where
    "To create a better world, we must protect our planet and promote creativity and freedom." rode on the label
    line, and shared a word only with a label ("creativ[e]"). So the labels' words do not count as the task's."""
    from promptomatix.backends.strategies import _NO_SPACES, _stems

    own = without_contract(cand.instructions, spec)
    if not own.strip() or own.strip() == without_contract(initial.instructions, spec).strip():
        return None
    task = " ".join([spec.description, without_contract(initial.instructions, spec), *spec.input_names,
                     *spec.output_names])  # fmt: skip
    vocab = _stems(task) - _stems(" ".join(labels_of(spec)))
    if not vocab or _NO_SPACES.search(task + own):
        return None
    words = _stems(own)
    if len(words) < _OFF_TOPIC_MIN_WORDS:  # "Checklist: 1. Read it." is too short to be about something else
        return None
    if words & (vocab | _stems(_TASK_TALK)):
        return None
    return "off the task: no word of the task, its fields or its kind of answer besides the labels"


def rejection(cand: PromptCandidate, spec: TaskSpec, initial: PromptCandidate) -> str | None:
    """Why `cand` must not be scored, or None. Rules look at what changed: the initial prompt is the user's."""
    if cand.instructions.strip() == initial.instructions.strip():
        return dropped_content(cand, spec, initial)
    text, before = cand.instructions.strip(), initial.instructions
    if not text:
        return "empty instructions"
    for reason in (
        placeholder(text, before),
        meta_copy(text, before),
        question(text),
        fragment(text, before),
        dropped_content(cand, spec, initial),
        off_topic(cand, spec, initial),
    ):
        if reason:
            return reason
    return None
