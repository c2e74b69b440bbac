"""Work out a TaskSpec from one sentence: keep what the user gave, ask the teacher for the rest, fall back.

At most two teacher calls (spec, then sample rows), each with a JSON schema. Each answer
part is validated on its own, so one junk part does not discard the good ones; whatever was not given is
listed in `TaskSpec.assumptions` with where it came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from promptomatix.backends.contract import LABEL_LINE_ADDED, contract_line, missing_labels
from promptomatix.errors import BudgetExceeded, ConfigurationError, DataError, LMCallError
from promptomatix.lm.types import ChatModel
from promptomatix.task import heuristics as h
from promptomatix.task.answers import FIELD_TYPES, teacher_fields, teacher_labels, valid_row
from promptomatix.task.models import FieldSpec, TaskSpec
from promptomatix.task.overrides import SpecOverrides, as_fields, parse_sample_data, parse_task_type
from promptomatix.task.parsing import parse_json_loose
from promptomatix.task.task_types import TaskType, known_task_types, label_kind, task_type_registry

log = logging.getLogger(__name__)

MAX_LABELS = 50
_SYSTEM = "You design task specifications for prompt optimization. Reply with one JSON object only, no prose."


def _ask(teacher: ChatModel, prompt: str, schema: dict[str, Any], notes: list[str], what: str) -> dict[str, Any]:
    """One structured call; LM failures become an assumption, budget exhaustion propagates."""
    try:
        text = teacher.chat(
            [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
            json_schema=schema,
            temperature=0.0,
        )
    except BudgetExceeded:
        raise
    except LMCallError as exc:
        log.warning("teacher call for %s failed: %s", what, exc)
        notes.append(f"teacher call for {what} failed ({exc.message}); used fallbacks")
        return {}
    answer = parse_json_loose(text)
    if not isinstance(answer, dict):
        log.info("teacher answer for %s was not a JSON object: %.80r", what, text)
        notes.append(f"teacher answer for {what} was not a JSON object; used fallbacks")
        return {}
    return answer


def _object_schema(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


_FIELD_LIST_SCHEMA = {
    "type": "array",
    "items": _object_schema(
        {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": sorted(FIELD_TYPES)},
            "description": {"type": "string"},
        }
    ),
}


def estimate_spec_calls(given: SpecOverrides | None = None, *, rows: Sequence[dict[str, Any]] | None = None) -> int:
    """Teacher calls `infer_task_spec` will make at most (for dry runs)."""
    g = given or SpecOverrides()
    has_data = bool(rows) or bool(g.sample_data)
    fields_known = (g.input_fields and g.output_fields) or has_data
    is_cls = g.task_type is not None and label_kind(g.task_type) is not None
    labels_known = bool(g.labels) or has_data or not is_cls
    call1 = not (g.task_type and fields_known and g.output_format is not None and labels_known)
    call2 = not has_data
    return int(bool(call1)) + int(call2)


@dataclass
class _Draft:
    """The spec as far as it is known, filled stage by stage; `notes` says where each part came from."""

    desc: str
    data: list[dict[str, Any]]
    task_type: str | None = None
    inputs: list[FieldSpec] | None = None
    outputs: list[FieldSpec] | None = None
    labels: list[str] | None = None
    sample_rows: list[dict[str, Any]] = field(default_factory=list)
    data_hint: str | None = None
    notes: list[str] = field(default_factory=list)
    given: list[str] = field(default_factory=list)


def infer_task_spec(
    description: str,
    *,
    teacher: ChatModel | None,
    given: SpecOverrides | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
) -> TaskSpec:
    """Build a valid TaskSpec. `rows` (user data) fixes fields and labels without asking the teacher."""
    g = given or SpecOverrides()
    d = _draft(description, g, rows)
    explicit_labels = h.extract_labels(d.desc)
    answer = _spec_answer(d, g, teacher, explicit_labels)  # call 1: only the parts still unknown
    _settle_task_type(d, answer)
    _settle_fields(d, answer)
    _settle_labels(d, answer, explicit_labels)
    output_format = _output_format(g.output_format, answer, d.notes)
    fields = [*(d.inputs or []), *(d.outputs or [])]
    if d.data and not d.sample_rows:
        d.sample_rows = [r for r in (valid_row(fields, row) for row in d.data[:10]) if r][:3]
    if not d.sample_rows and teacher is not None:  # call 2
        d.sample_rows = _teacher_sample_rows(d, teacher, fields)
    # The initial prompt is never the teacher's: it is the baseline the optimizer must beat, so it stays the user's
    # own words or is built from the description (a small teacher's rewrite is usually worse).
    initial_prompt, whose = g.initial_prompt, "your prompt"
    if not initial_prompt:
        initial_prompt, whose = (
            _built_prompt(d, output_format, g.constraints or []),
            "the prompt built from the description",
        )
    for note in d.notes:
        log.info("spec: %s", note)
    try:
        spec = TaskSpec(
            description=d.desc, task_type=d.task_type, input_fields=d.inputs, output_fields=d.outputs,
            output_format=output_format, constraints=list(g.constraints or []), sample_rows=d.sample_rows,
            initial_prompt=initial_prompt, assumptions=d.notes, given=d.given,
        )  # fmt: skip
    except ValidationError as exc:
        raise ConfigurationError(f"invalid task spec: {exc.errors()[0]['msg']}") from None
    return with_label_line(spec, whose)


def _draft(description: str, g: SpecOverrides, rows: Sequence[dict[str, Any]] | None) -> _Draft:
    """What the user gave, and what their data decides without a model (fields, and that labels are short)."""
    desc = (g.task_description or description or "").strip()
    if not desc:
        raise ConfigurationError("no task description", hint='pass one, e.g. promptomatix optimize "Classify ..."')
    sample_rows = parse_sample_data(g.sample_data) if g.sample_data else []
    d = _Draft(desc=desc, data=list(rows or []) or sample_rows, sample_rows=sample_rows, given=["description"])
    d.task_type = parse_task_type(g.task_type) if g.task_type else None
    d.inputs = as_fields(g.input_fields) if g.input_fields else None
    d.outputs = as_fields(g.output_fields) if g.output_fields else None
    d.labels = list(g.labels) if g.labels else None
    if d.outputs and not d.labels:
        d.labels = next((f.labels for f in d.outputs if f.labels), None)
    for part, value in (
        ("task_type", d.task_type), ("input_fields", d.inputs), ("output_fields", d.outputs), ("labels", d.labels),
        ("output_format", g.output_format), ("sample_rows", sample_rows), ("initial_prompt", g.initial_prompt),
        ("constraints", g.constraints),
    ):  # fmt: skip
        if value:
            d.given.append(part)
    if d.data and not (d.inputs and d.outputs):
        in_names, out_names, how = h.fields_from_rows(
            d.data, [f.name for f in d.inputs] if d.inputs else None, [f.name for f in d.outputs] if d.outputs else None
        )
        if not in_names or not out_names:
            raise ConfigurationError("cannot tell input from output columns in the data", hint="pass --output-fields")
        types = {c: h.value_type(r.get(c) for r in d.data) for c in in_names + out_names}
        d.inputs = d.inputs or [FieldSpec(name=n, type=types[n]) for n in in_names]  # type: ignore[arg-type]
        d.outputs = d.outputs or [FieldSpec(name=n, type=types[n]) for n in out_names]  # type: ignore[arg-type]
        d.notes.append(f"fields taken from the data columns ({how})")
        _unused_columns_note(d, in_names + out_names, bool(g.input_fields))
    if d.data and d.outputs and h.looks_like_labels([r.get(d.outputs[0].name) for r in d.data]):
        d.data_hint = TaskType.CLASSIFICATION
    return d


def _unused_columns_note(d: _Draft, used: list[str], inputs_given: bool) -> None:
    """Name the data columns the spec leaves out, and the flag that brings them in: an id column is left out on
    purpose (it would split duplicates across train and test); a column the given inputs skip may be intended."""
    unused = [c for c in h.columns_of(d.data) if c not in used]
    if not unused:
        return
    ids = [c for c in h.identifier_columns(d.data, unused) if not inputs_given]
    names = ",".join(f.name for f in d.inputs or [])
    if ids:
        many = len(ids) > 1
        d.notes.append(f"column{'s' * many} {', '.join(map(repr, ids))} look{'s' * (not many)} like row identifiers: "
                       f"not used as input{'s' * many} (to use: --input-fields {names},{','.join(ids)})")  # fmt: skip
    if other := [c for c in unused if c not in ids]:
        d.notes.append(f"data column{'s' * (len(other) > 1)} not used: {', '.join(other)} (to use: "
                       f"--input-fields {names},{','.join(other)})")  # fmt: skip


def _spec_answer(d: _Draft, g: SpecOverrides, teacher: ChatModel | None, explicit: list[str] | None) -> dict[str, Any]:
    """Call 1 asks only for the parts still unknown, so the teacher cannot overwrite what was given."""
    props: dict[str, Any] = {}
    if d.task_type is None:
        props["task_type"] = {"type": "string", "enum": known_task_types()}
    if d.inputs is None:
        props["input_fields"] = _FIELD_LIST_SCHEMA
    if d.outputs is None:
        props["output_fields"] = _FIELD_LIST_SCHEMA
    if d.labels is None and not d.data and not explicit and (d.task_type is None or label_kind(d.task_type)):
        props["labels"] = {"type": "array", "items": {"type": "string"}}
    if g.output_format is None:
        props["output_format"] = {"type": ["string", "null"]}
    if not props:
        return {}
    if teacher is None:
        d.notes.append("no teacher model: spec parts inferred by keyword rules")
        return {}
    known = [f"Task description: {d.desc}"]
    if d.task_type:
        known.append(f"Task type (fixed): {d.task_type}")
    if d.inputs:
        known.append(f"Inputs (fixed): {', '.join(f.name for f in d.inputs)}")
    if d.outputs:
        known.append(f"Outputs (fixed): {', '.join(f.name for f in d.outputs)}")
    asks = [
        f"Fill in these keys: {', '.join(props)}.",
        "task_type is one of: " + ", ".join(known_task_types()) + "." if "task_type" in props else "",
        "Fields are short snake_case names with a type and a one-line description."
        if "input_fields" in props or "output_fields" in props
        else "",
        "labels: the closed set of class names, if the task is classification." if "labels" in props else "",
    ]
    prompt = "\n".join([*known, "", *asks]).strip()
    return _ask(teacher, prompt, _object_schema(props), d.notes, "the task spec")


def _settle_task_type(d: _Draft, answer: dict[str, Any]) -> None:
    """Given, else the teacher's (if it names a known type), else the data's hint, else keyword rules."""
    if d.task_type is not None:
        return
    name = answer.get("task_type")
    found = task_type_registry().get(name) if isinstance(name, str) else None
    if found is not None:
        d.task_type = found.name
        d.notes.append(f"task_type inferred by teacher ({d.task_type})")
    elif d.data_hint is not None:
        d.task_type = d.data_hint
        d.notes.append(f"task_type from the data: short repeated output values → {d.task_type}")
    else:
        d.task_type = h.guess_task_type(d.desc)
        d.notes.append(f"task_type fell back to keyword rules on the description → {d.task_type}")


def _settle_fields(d: _Draft, answer: dict[str, Any]) -> None:
    """Given or from the data, else the teacher's, else the task type's defaults (an output never shadows an input)."""
    assert d.task_type is not None
    default_in, default_out = h.default_fields(d.task_type, d.desc)
    if d.inputs is None:
        d.inputs = teacher_fields(answer.get("input_fields"), set())
        if d.inputs:
            d.notes.append(f"input fields inferred by teacher ({', '.join(f.name for f in d.inputs)})")
        else:
            d.inputs = default_in
            d.notes.append(f"input fields fell back to defaults for {d.task_type} ({d.inputs[0].name})")
    taken = {f.name for f in d.inputs}
    if d.outputs is None:
        d.outputs = teacher_fields(answer.get("output_fields"), taken)
        if d.outputs:
            d.notes.append(f"output fields inferred by teacher ({', '.join(f.name for f in d.outputs)})")
        else:
            name = default_out[0].name if default_out[0].name not in taken else "output"
            d.outputs = [FieldSpec(name=name)]
            d.notes.append(f"output field fell back to the default for {d.task_type} ({name})")


#: From this many rows (what a run needs: 1 train, 1 valid, 4 test) data that shows one label is an error; fewer are
#: examples, and the label set comes from elsewhere.
ONE_LABEL_ERROR_ROWS = 6


def _settle_labels(d: _Draft, answer: dict[str, Any], explicit: list[str] | None) -> None:
    """For label tasks: given, else the data's values, else the description's, the teacher's, keyword rules."""
    assert d.task_type is not None and d.outputs
    if not label_kind(d.task_type) or not _labels_as_text(d):
        return
    labels, notes = d.labels, d.notes
    one_of = label_kind(d.task_type) == "single"
    if labels is not None and one_of and len(labels) < 2:
        raise ConfigurationError(
            f"the label set has one label ({labels[0]!r}); a classifier needs two or more",
            hint="name them all, e.g. --labels positive,negative",
        )
    if labels is None and d.data:
        labels = h.discover_labels(d.data, d.outputs[0].name, multi=label_kind(d.task_type) == "multi") or None
        if labels and one_of and len(labels) == 1 and len(d.data) < ONE_LABEL_ERROR_ROWS:
            notes.append(f"the data's {len(d.data)} rows show one label ({labels[0]}): not taken as the label set")
            labels = None  # a few examples: the description, the teacher or the keyword rules name the rest
        elif labels and one_of and len(labels) == 1:
            raise DataError(
                f"every row of the data has the same {d.outputs[0].name} ({labels[0]!r}); a classifier needs "
                "examples of two or more labels",
                hint="add rows of the other labels to the data, or name them all with --labels A,B",
            )
        if labels and len(labels) > MAX_LABELS:
            notes.append(f"{len(labels)} distinct output values in the data: too many for a label set")
            labels = None
        elif labels:
            notes.append(f"labels discovered from the data ({', '.join(labels)})")
    if labels is None and explicit:
        labels = explicit
        notes.append(f"labels read from the description ({', '.join(labels)})")
    if labels is None:
        labels = teacher_labels(answer.get("labels"))
        labels = labels if labels and (len(labels) > 1 or not one_of) else None  # one label is no label set
        if labels:
            notes.append(f"labels inferred by teacher ({', '.join(labels)})")
    if labels is None:
        labels = h.guess_labels(d.desc)
        notes.append(f"labels fell back to keyword rules ({', '.join(labels)})" if labels else
                     "no label set found: class names are free text")  # fmt: skip
    d.labels = labels
    if labels:
        d.outputs = [d.outputs[0].model_copy(update={"labels": labels}), *d.outputs[1:]]


def _labels_as_text(d: _Draft) -> bool:
    """Whether the output can carry a label set. Numbers or true/false (JSON's 0/1 labels) become text labels when
    they look like labels or the user named them, so a JSONL file gets the same task as the same CSV file."""
    assert d.outputs
    out = d.outputs[0]
    if out.type == "str":
        return True
    as_labels = d.labels or (d.data and h.looks_like_labels([r.get(out.name) for r in d.data]))
    if out.type in ("int", "bool") and as_labels:
        d.outputs = [out.model_copy(update={"type": "str"}), *d.outputs[1:]]
        d.notes.append(f"the {out.name} values are {out.type} values: taken as labels, compared as text")
        return True
    if d.labels:
        d.notes.append(f"the labels given were not used: the output '{out.name}' holds {out.type} values, not labels")
    return False


def _output_format(given: str | None, answer: dict[str, Any], notes: list[str]) -> str | None:
    """Given, else the teacher's if it describes a format (two words at least, under 500 characters)."""
    if given is not None:
        return given
    value = answer.get("output_format")
    if not (isinstance(value, str) and value.strip() and len(value) <= 500):
        return None
    if len(re.findall(r"[^\W\d_]+", value)) >= 2:
        notes.append("output_format inferred by teacher")
        return value.strip()
    # a small teacher answers "json", "classification", "response": a word, not a format
    notes.append(f"output_format from the teacher ignored ({value.strip()!r} does not describe a format)")
    return None


def _teacher_sample_rows(d: _Draft, teacher: ChatModel, fields: list[FieldSpec]) -> list[dict[str, Any]]:
    """Call 2, only when neither the user nor their data gave examples: up to 3 rows, each checked on its own."""
    assert d.outputs
    prompt = "\n".join(
        [
            f"Task description: {d.desc}",
            f"Task type: {d.task_type}",
            "Fields: " + ", ".join(f"{f.name} ({f.type})" for f in fields),
            f"Labels: {', '.join(d.outputs[0].labels)}" if d.outputs[0].labels else "",
            "",
            "Write up to 3 realistic example rows with every field (sample_rows).",
        ]
    ).strip()
    row_schema = _object_schema({f.name: f.json_schema() for f in fields})
    schema = _object_schema({"sample_rows": {"type": "array", "items": row_schema, "minItems": 1, "maxItems": 3}})
    got = _ask(teacher, prompt, schema, d.notes, "sample rows").get("sample_rows")
    rows = [r for r in (valid_row(fields, row) for row in got or []) if r][:3] if isinstance(got, list) else []
    d.notes.append(f"{len(rows)} sample rows written by teacher" if rows else "no usable sample rows")
    return rows


def _built_prompt(d: _Draft, output_format: str | None, constraints: list[str]) -> str:
    assert d.inputs and d.outputs
    d.notes.append("initial prompt built from the description")
    return h.build_initial_prompt(
        d.desc, input_names=[f.name for f in d.inputs], output_names=[f.name for f in d.outputs],
        labels=d.outputs[0].labels, output_format=output_format, constraints=constraints,
    )  # fmt: skip


def with_label_line(spec: TaskSpec, whose: str) -> TaskSpec:
    """The spec with the task's label line appended (once, worded as the built-in prompt words it) when the initial
    prompt does not name every label; unchanged, byte for byte, when it does.

    Why: what is scored is what is exported. A classification prompt that never names its labels scores fine under
    the local engine's answer grammar, and is then used without it; so the label set goes into the scored text."""
    missing = missing_labels(spec.initial_prompt, spec)
    line = contract_line(spec)
    if not missing or line is None:
        return spec
    note = f"{LABEL_LINE_ADDED}: '{line}' because {whose} did not name the labels (missing: {', '.join(missing)})"
    log.info("spec: %s", note)
    return spec.model_copy(update={"initial_prompt": f"{spec.initial_prompt.rstrip()}\n{line}",
                                   "assumptions": [*spec.assumptions, note]})  # fmt: skip
