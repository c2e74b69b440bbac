"""The task's contract in a prompt: the lines that name the label set and the output format.

Why: the local engine constrains answers with a JSON grammar, so a prompt without "Answer with exactly one of:
positive, negative." scores the same there, and the length penalty used to reward dropping it. The exported
text is then used without that grammar and no longer says what the answers are. Contract lines are never
dropped, never counted by the length penalty, and a candidate that loses a label the initial prompt named is
rejected (see guards.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptomatix.task.models import TaskSpec

#: How the spec's note starts when the label line was appended to an initial prompt that did not name the labels.
LABEL_LINE_ADDED = "added the label line"
_FORMAT_PREFIXES = ("output format:", "answer with exactly one of", "answer in json")
#: A label line has few words besides the labels ("Answer with exactly one of:" is five).
_MAX_OTHER_WORDS = 8
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def labels_of(spec: TaskSpec) -> list[str]:
    """Every label of every output field that has a label set."""
    return [lab for f in spec.output_fields for lab in (f.labels or [])]


def names(text: str, term: str) -> bool:
    """True when `term` occurs in `text` as whole words, ignoring case (so 'positive' is not in 'positively')."""
    return re.search(rf"(?<![\w-]){re.escape(term.strip().lower())}(?![\w-])", text.lower()) is not None


def missing_labels(text: str, spec: TaskSpec) -> list[str]:
    return [lab for lab in labels_of(spec) if not names(text, lab)]


def is_contract_line(line: str, spec: TaskSpec) -> bool:
    """A line (or sentence) that states the answer's form: an explicit output-format line, or a short one that
    names every label of a set of two or more ("Say positive or negative."). A long sentence that happens to
    name the labels is an instruction, and pays the length penalty like any other."""
    low = line.strip().lower()
    if low.startswith(_FORMAT_PREFIXES):
        return True
    if spec.output_format and spec.output_format.strip().lower() in low:
        return True
    labels = labels_of(spec)
    if len(labels) < 2 or missing_labels(line, spec):
        return False
    rest = low
    for lab in sorted(labels, key=len, reverse=True):
        rest = re.sub(rf"(?<![\w-]){re.escape(lab.lower())}(?![\w-])", " ", rest)
    return len(re.findall(r"\w+", rest)) <= _MAX_OTHER_WORDS


def contract_line(spec: TaskSpec) -> str | None:
    """The label line the initial prompt gets (task/heuristics.py words it the same way)."""
    fields = [f for f in spec.output_fields if f.labels]
    if len(fields) == 1:
        return f"Answer with exactly one of: {', '.join(fields[0].labels or [])}."
    if fields:
        return " ".join(f"'{f.name}' must be exactly one of: {', '.join(f.labels or [])}." for f in fields)
    return None


def without_contract(text: str, spec: TaskSpec) -> str:
    """`text` minus its contract sentences: what the length penalty may trade against quality."""
    kept = []
    for line in text.split("\n"):
        parts = [p for p in _SENTENCE.split(line) if p.strip() and not is_contract_line(p, spec)]
        if parts:
            kept.append(" ".join(parts))
    return "\n".join(kept)


def restore_labels(instructions: str, spec: TaskSpec, required: list[str]) -> str:
    """Append the label line when a rewrite dropped labels that `required` (the current prompt's) names."""
    if not required or not any(not names(instructions, lab) for lab in required):
        return instructions
    line = contract_line(spec)
    return f"{instructions.rstrip()}\n{line}" if line else instructions
