"""Checks on every teacher-written row before it is used: leaks, placeholders, near-duplicates, a blind relabel.

Seen from the embedded 135M teacher: "The movie was very bad…" labelled positive (the label was ours, the text
was not), "This is batch 22…" (the prompt leaking into the row), "[noun_1]" (template text), and "This is a movie
review with a positive sentiment." (the input states its own label, so any prompt scores on it). Each check
returns a reason, counted in the data report. The relabel asks the teacher for the label of the input alone,
blind to the label we asked for, under the label-set enum; a row is kept only when the two agree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from promptomatix.data.validate import normalize_text, row_key
from promptomatix.errors import LMCallError

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel
    from promptomatix.task.models import TaskSpec

#: Token-set Jaccard at or above which two inputs are the same example reworded.
NEAR_DUPLICATE = 0.8
_WORD = re.compile(r"\w+")
_META = re.compile(
    r"\b(batch|draft) \d+\b|\bexample \d+\b|\b(topic|length|style|diversity):|\brealistic example\b|\bcorrect "
    r"(label|answer|output)\b|\breply with json\b|\bthis is (a|an) (example|sample|training)\b",
    re.I,
)
_SELF_DESCRIBED = re.compile(
    r"^\s*(this|here) is (a|an|the|my|one) [\w\s-]{0,40}?\b(review|example|text|sentence|question|input|sample|"
    r"message|post|comment)\b",
    re.I,
)
_LABEL_WORDS = r"(label(l?ed)?|sentiment|class(ified)?|category|categori[sz]ed|tagged)"
_PLACEHOLDER = re.compile(
    r"\[[A-Za-z_][^\[\]\n]{0,40}\]|\{[A-Za-z_]\w{0,30}\}|<[A-Za-z_][^<>]{0,40}>|\bplaceholder\b|\blorem ipsum\b"
    r"|\bXXX\b|_{3,}|\b(noun|verb|adjective|name)_\d\b",
    re.I,
)


def _inputs(spec: TaskSpec, row: dict[str, Any]) -> list[str]:
    return [str(row.get(f.name, "")) for f in spec.input_fields if isinstance(row.get(f.name), str)]


def leak_reason(spec: TaskSpec, row: dict[str, Any]) -> str | None:
    """Prompt or meta text in an input, or an input that states its own label."""
    labels = [lab for f in spec.output_fields for lab in (f.labels or [])]
    for text in _inputs(spec, row):
        if _META.search(text):
            return "prompt/meta text in the input"
        if _SELF_DESCRIBED.search(text):
            return "the input describes itself instead of being an example"
        for lab in labels:
            lab_re = re.escape(lab.lower())
            near = rf"\b{_LABEL_WORDS}\b\W+(\w+\W+){{0,4}}{lab_re}\b|\b{lab_re}\W+(\w+\W+){{0,3}}{_LABEL_WORDS}\b"
            if re.search(near, text.lower()):
                return "the input states its own label"
    return None


def placeholder_reason(spec: TaskSpec, row: dict[str, Any]) -> str | None:
    """Template slots the teacher did not fill: [noun_1], {name}, <placeholder>."""
    for text in _inputs(spec, row):
        if _PLACEHOLDER.search(text):
            return "template placeholder in the input"
    return None


def tokens(spec: TaskSpec, row: dict[str, Any]) -> frozenset[str]:
    """The words of a row's inputs, for the near-duplicate check (punctuation is not a word here)."""
    return frozenset(_WORD.findall(normalize_text(" ".join(_inputs(spec, row)))))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate(candidate: frozenset[str], kept: list[frozenset[str]], threshold: float = NEAR_DUPLICATE) -> bool:
    """True when the input shares most of its words with one already kept (exact duplicates are caught earlier).
    Among synthetic rows callers pass the rows of the same label only: "the film was great" / "the film was not
    great" is a useful contrast, not a duplicate; a reworded user or test row is a copy whatever its label. Inputs under five words are left to the exact-duplicate rule (one word matters).
    """
    return len(candidate) >= 5 and any(jaccard(candidate, other) >= threshold for other in kept)


def teacher_examples(spec: TaskSpec, held_out: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The rows the synthetic prompt shows the teacher as examples of the format: the first two sample rows left
    once those repeating a held-out test row are out (`without_held_out`, as `generate_synthetic` does)."""
    return format_examples(without_held_out(spec, list(held_out)))


def format_examples(spec: TaskSpec) -> list[dict[str, Any]]:
    """The sample rows a synthetic prompt shows (the prompt and `shown_rows` both read them here: the rows kept out
    of the test are exactly the rows shown)."""
    return [r for r in spec.sample_rows[:2] if isinstance(r, dict)]


def shown_rows(spec: TaskSpec, rows: Iterable[dict[str, Any]], held_out: Iterable[dict[str, Any]] = ()) -> set[int]:
    """Ids of the `rows` the teacher is shown as examples (`teacher_examples`): they must not become test rows."""
    keys = {row_key(spec, r) for r in teacher_examples(spec, held_out)}
    return {id(r) for r in rows if row_key(spec, r) in keys} if keys else set()


def without_held_out(spec: TaskSpec, held_out: list[dict[str, Any]]) -> TaskSpec:
    """The spec with the sample rows that repeat or reword a held-out test row left out (the teacher sees them)."""
    keys = {row_key(spec, r) for r in held_out}
    words = [tokens(spec, r) for r in held_out]
    keep = [r for r in spec.sample_rows if row_key(spec, r) not in keys and not near_duplicate(tokens(spec, r), words)]
    return spec if len(keep) == len(spec.sample_rows) else spec.model_copy(update={"sample_rows": keep})


def _label_schema(spec: TaskSpec, n: int | None) -> dict[str, Any]:
    f = spec.field(spec.label_field or "")
    enum = {"type": "string", "enum": list(f.labels or [])}
    if n is None:
        props: dict[str, Any] = {f.name: enum}
    else:
        props = {"labels": {"type": "array", "items": enum, "minItems": n, "maxItems": n}}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def relabel(spec: TaskSpec, teacher: ChatModel, rows: list[dict[str, Any]]) -> list[str | None]:
    """The teacher's label for each row's inputs alone (never told the label we asked for), under the label-set
    enum: one short call for one row (small local teachers), one call for a batch. None where it gave no label."""
    from promptomatix.backends.prompt import format_inputs
    from promptomatix.task.parsing import parse_json_loose

    name = spec.label_field
    if not name or not rows:
        return [None] * len(rows)
    f = spec.field(name)
    rule = f"{spec.description.rstrip('.')}. Answer with exactly one of: {', '.join(f.labels or [])}."
    if len(rows) == 1:
        user = format_inputs(spec, rows[0])
    else:
        listed = "\n\n".join(f"Input {i + 1}:\n{format_inputs(spec, r)}" for i, r in enumerate(rows))
        user = f"{listed}\n\nGive the {name} of each input, in order, as JSON: {{\"labels\": [...]}}"
    schema = _label_schema(spec, None if len(rows) == 1 else len(rows))
    try:
        text = teacher.chat([{"role": "system", "content": rule}, {"role": "user", "content": user}],
                            json_schema=schema, temperature=0.0, max_tokens=24 + 12 * len(rows))  # fmt: skip
    except LMCallError:
        return [None] * len(rows)
    answer = parse_json_loose(text)
    got = ([answer.get(name)] if len(rows) == 1 else answer.get("labels")) if isinstance(answer, dict) else None
    if not isinstance(got, list) or len(got) != len(rows):
        return [None] * len(rows)
    return [f.canonical_label(v) if isinstance(v, str) else None for v in got]


def text_quality_issue(spec: TaskSpec, row: dict[str, Any]) -> str | None:
    """Why a generated row's inputs are not usable text (small models emit JSON, emoji runs, bare labels)."""
    from promptomatix.task.models import normalize_label

    labels = {normalize_label(lab) for lab in spec.labels or []}
    for f in spec.input_fields:
        value = row.get(f.name)
        if f.type != "str" or value is None:
            continue
        if isinstance(value, (dict, list)):
            return "input is not plain text"
        text = str(value).strip()
        letters = sum(ch.isalpha() or ch.isspace() for ch in text)
        if len(text) > 10 and letters < 0.6 * len(text):  # emoji runs, digit soup
            return "low-quality text"
        if normalize_label(text) in labels or text.lstrip().startswith(("{", "[")):
            return "input is not plain text"
    return None


def batch_verdict(spec: TaskSpec, teacher: ChatModel, items: list[Any]) -> set[int] | None:
    """`--verify-synthetic`: a second opinion per batch, which examples are correct and realistic. None when the answer is unusable."""
    from promptomatix.data.validate import check_row
    from promptomatix.task.parsing import parse_json_loose

    candidates = {i: row for i, row in enumerate(items) if check_row(spec, row)[0] is not None}
    if not candidates:
        return set()
    listing = "\n".join(f"{i}: {json.dumps(r, ensure_ascii=False)}" for i, r in candidates.items())
    prompt = (
        f"Task: {spec.description}\nCheck each example: is the output correct for the input, and is the "
        f'example realistic?\n{listing}\nReply with JSON: {{"keep": [indices of the good examples]}}'
    )
    schema = {
        "type": "object",
        "properties": {"keep": {"type": "array", "items": {"type": "integer"}}},
        "required": ["keep"],
    }
    text = teacher.chat(
        [
            {"role": "system", "content": "You review training data. Reply with JSON only."},
            {"role": "user", "content": prompt},
        ],
        json_schema=schema,
        temperature=0.0,
    )
    answer = parse_json_loose(text)
    keep = answer.get("keep") if isinstance(answer, dict) else None
    if not isinstance(keep, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in keep):
        return None
    return {i for i in keep if i in candidates}
