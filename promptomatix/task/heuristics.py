"""Deterministic fallbacks for spec inference, used when the teacher is absent or answers junk.

A 135M teacher often cannot produce a usable spec; these rules make sure the pipeline still gets a valid one,
and every caller records which parts came from here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from promptomatix.task.models import FieldSpec, normalize_label
from promptomatix.task.task_types import TaskType, task_type_registry

#: Column names that usually hold the expected output when a user's data does not say.
OUTPUT_COLUMN_HINTS = (
    "label",
    "labels",
    "answer",
    "output",
    "target",
    "summary",
    "translation",
    "sentiment",
    "category",
    "class",
    "response",
    "completion",
    "y",
)

_LIST_INTRO = re.compile(
    r"\b(?:as|into|between|among|from|one of|either|labels?|categories|classes)\b\s*:?\s*", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"[.;!?\n](?:\s|$)|$")
_PAREN_LIST = re.compile(r"\(([^()]{3,120})\)")
_TRAILING = re.compile(
    r"\s+(?:based|depending|according|given|using|with|by|for|from|in|on|if|when|so|that|which|where|because)\b.*$",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^(?:either|one of|a|an|the|being)\s+", re.IGNORECASE)


def guess_task_type(description: str) -> str:
    """Keyword rules of the registered task types on the description, by `keyword_rank` (a plugin's types come
    before the built-ins by default); generation when nothing matches."""
    text = f" {description.lower()} "
    for task_type in sorted(task_type_registry().all(), key=lambda t: t.keyword_rank):
        if any(n in text for n in task_type.keywords):
            return task_type.name
    return TaskType.GENERATION


def _split_items(text: str, *, slash: bool = False) -> list[str] | None:
    text = _TRAILING.sub("", text.strip())
    parts = re.split(r"\s*,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+|\s*\|\s*" + (r"|\s*/\s*" if slash else ""), text)
    items = []
    for part in parts:
        part = _LEADING.sub("", part.strip().strip("\"'`*").strip())
        part = part.strip("\"'`*").strip()
        if not part:
            continue
        if len(part.split()) > 3 or len(part) > 40:
            return None
        items.append(part)
    unique = list(dict.fromkeys(items))
    return unique if len(unique) >= 2 else None


def extract_labels(description: str) -> list[str] | None:
    """Label set spelled out in the description ("as positive or negative", "into A, B, or C", "(yes/no)")."""
    for match in _PAREN_LIST.finditer(description):
        items = _split_items(match.group(1), slash=True)
        if items:
            return items
    # Latest intro word first: in "emails from customers into a, b, or c" the list follows "into".
    for match in reversed(list(_LIST_INTRO.finditer(description))):
        rest = description[match.end() :]
        end = _SENTENCE_END.search(rest)
        items = _split_items(rest[: end.start()] if end else rest)
        if items:
            return items
    return None


def guess_labels(description: str) -> list[str] | None:
    """Conventional label sets for a few well-known tasks whose description does not list them."""
    lowered = description.lower()
    if "sentiment" in lowered:
        return ["positive", "negative", "neutral"] if "neutral" in lowered else ["positive", "negative"]
    if "spam" in lowered:
        return ["spam", "not spam"]
    return None


def safe_field_name(name: str) -> str:
    """An identifier DSPy can use as a signature field ("Review Text" → "review_text")."""
    cleaned = re.sub(r"\W+", "_", str(name).strip().lower()).strip("_")
    if not cleaned:
        return "field"
    return f"f_{cleaned}" if cleaned[0].isdigit() else cleaned


def default_fields(task_type: str, description: str = "") -> tuple[list[FieldSpec], list[FieldSpec]]:
    """Conventional field names per task type, used when neither the user, data nor teacher gave any."""
    found = task_type_registry().get(task_type)
    inputs, output = (list(found.inputs), found.output) if found else (["request"], "response")
    if task_type == TaskType.QA and re.search(r"\b(context|passage|document|article)\b", description.lower()):
        inputs = ["context", "question"]
    return [FieldSpec(name=n) for n in inputs], [FieldSpec(name=output)]


def value_type(values: Iterable[Any]) -> str:
    """The narrowest field type that fits every non-null value (CSV values are text, so they stay str)."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, list):
            kinds.add("list")
        elif isinstance(v, dict):
            kinds.add("json")
        else:
            kinds.add("str")
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "str"


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Union of keys in first-seen order."""
    return list(dict.fromkeys(k for row in rows for k in row))


_ID_NAMES = {"", "id", "idx", "index", "_id", "#", "uid", "uuid", "guid", "rowid", "row_id", "row id", "row_index"}
_ID_PATTERN = re.compile(r"unnamed: ?\d+|.*[_\s.-](id|idx)", re.IGNORECASE)  # pandas' index; "review_id"
#: Names that say "row number" only when the values do count the rows (a "no" or "line" column may be content).
_ROW_NUMBER_NAMES = {"no", "no.", "nr", "num", "row", "rownum", "row_num", "row_number", "line", "line_no", "sno",
                     "s.no", "s_no", "sr", "sr_no", "serial", "n°"}  # fmt: skip
_INT = re.compile(r"\s*[-+]?\d+\s*")


def identifier_columns(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """Columns that number or name the rows rather than hold task content, each with a distinct value per row: a
    name like id/idx/Unnamed: 0/review_id (or camelCase reviewId), or a row-number name (row, no, …) whose values
    count the rows 0..n-1 or 1..n.

    Why: taken as an input, an id becomes part of the prompt ("Given: id, review") and of the dedup key, so the same
    review under two ids lands in train and in the held-out test. Values alone never decide: distinct integers 1..n
    are as likely an operand (a,b,sum), a rank or a star rating in a small file as a row number."""
    found = []
    for c in columns:
        values = [r.get(c) for r in rows if r.get(c) is not None and str(r.get(c)).strip()]
        if len(values) < 4 or len({str(v).strip() for v in values}) != len(values):
            continue
        name = str(c).strip()
        named = name.lower() in _ID_NAMES or bool(_ID_PATTERN.fullmatch(name)) or bool(re.fullmatch(r"[a-z]+Id", name))
        if named or (name.lower() in _ROW_NUMBER_NAMES and _counts_rows(values)):
            found.append(c)
    return found


def _counts_rows(values: Sequence[Any]) -> bool:
    """Integers (or integer text) numbering the rows 0..n-1 or 1..n in some order: a row number."""
    if not all(type(v) is int or (isinstance(v, str) and _INT.fullmatch(v)) for v in values):
        return False
    nums = sorted(int(v) for v in values)
    return nums[0] in (0, 1) and nums == list(range(nums[0], nums[0] + len(nums)))


def fields_from_rows(
    rows: Sequence[dict[str, Any]],
    input_names: list[str] | None,
    output_names: list[str] | None,
) -> tuple[list[str], list[str], str]:
    """Pick input/output columns from data; returns (inputs, outputs, how) so the caller can record it.

    Inferred inputs leave out identifier-like columns (see `identifier_columns`) unless nothing else is left; an
    inferred output prefers a column named like one (label, answer, …), with or without given inputs."""
    columns = columns_of(rows)
    if input_names and output_names:
        return input_names, output_names, "given"
    if input_names:
        rest = [c for c in columns if c not in input_names]
        out, how = _output_column(rows, rest, "output = the last other data column", inputs_given=True)
        return input_names, out, how
    if not output_names:
        output_names, how = _output_column(rows, columns, "output = the last data column", inputs_given=False)
        if not output_names or len(columns) < 2:
            return columns[:-1], columns[-1:], "output = the last data column"
    else:
        how = "inputs = the other data columns"
    inputs = [c for c in columns if c not in output_names]
    ids = identifier_columns(rows, inputs)
    return ([c for c in inputs if c not in ids] or inputs), output_names, how


def _output_column(
    rows: Sequence[dict[str, Any]], candidates: list[str], fallback: str, *, inputs_given: bool
) -> tuple[list[str], str]:
    """The candidate named like an output (OUTPUT_COLUMN_HINTS order), else the last one that is not an id.

    Without given inputs, the only non-id column is not made the output when that leaves nothing but ids as inputs
    ("text,id" would become the task "id → text"): it stays the input, the last id-like column is the output (the
    old last-column rule for "text,id"), and `how` says so."""
    lowered = {str(c).lower(): c for c in candidates}
    for hint in OUTPUT_COLUMN_HINTS:
        if hint in lowered:
            return [lowered[hint]], f"output column {lowered[hint]!r} recognised by name"
    ids = identifier_columns(rows, candidates)
    usable = [c for c in candidates if c not in ids] or candidates
    if not inputs_given and len(usable) == 1 and len(candidates) > 1:
        out = [c for c in candidates if c != usable[0]][-1]
        return [out], (
            f"output = {out!r}, an id-like column, for want of a better one: no column is named like an output and "
            f"the only content column {usable[0]!r} is kept as the input; pass --output-fields to choose"
        )
    return usable[-1:], fallback + (f" ({usable[-1]!r})" if usable else "")


def discover_labels(rows: Iterable[dict[str, Any]], field: str, *, multi: bool = False) -> list[str]:
    """Distinct values of `field`, most frequent first (ties: first seen); multi splits comma lists. Each label is
    spelled as most rows spell it (trimmed), so one stray "POSITIVE " at the top does not rename the class."""
    counts: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for row in rows:
        value = row.get(field)
        if value is None:
            continue
        items = value if isinstance(value, list) else (str(value).split(",") if multi else [value])
        for item in items:
            text = str(item).strip()
            key = normalize_label(text)
            if not key or key == "nan":  # a float NaN, or pandas' missing value written out as text
                continue
            spelled.setdefault(key, Counter())[text] += 1
            counts[key] += 1
    order = {k: i for i, k in enumerate(spelled)}
    return [spelled[k].most_common(1)[0][0] for k in sorted(counts, key=lambda k: (-counts[k], order[k]))]


def looks_like_labels(values: Sequence[Any], *, max_labels: int = 20) -> bool:
    """Short, repeated values suggest a classification target."""
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if len(texts) < 4:
        return False
    distinct = {normalize_label(t) for t in texts}
    return len(distinct) <= max_labels and len(distinct) <= len(texts) / 2 and all(len(t.split()) <= 3 for t in texts)


def build_initial_prompt(
    description: str,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    labels: Sequence[str] | None = None,
    output_format: str | None = None,
    constraints: Sequence[str] = (),
) -> str:
    """A plain baseline prompt that stays faithful to the user's words (the optimizer must beat it)."""
    text = description.strip()
    if text and text[-1] not in ".!?":
        text += "."
    lines = [text, f"Given: {', '.join(input_names)}. Produce: {', '.join(output_names)}."]
    if labels:
        lines.append(f"Answer with exactly one of: {', '.join(labels)}.")
    if output_format:
        lines.append(f"Output format: {output_format}")
    lines.extend(f"- {c}" for c in constraints)
    return "\n".join(lines)
