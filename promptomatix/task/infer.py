"""Work out a TaskSpec from one sentence: keep what the user gave, ask the teacher for the rest, fall back.

At most two teacher calls (spec, then sample rows / initial prompt), each with a JSON schema. Each answer
part is validated on its own, so one junk part does not discard the good ones; whatever was not given is
listed in `TaskSpec.assumptions` with where it came from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from promptomatix.backends.contract import LABEL_LINE_ADDED, contract_line, missing_labels
from promptomatix.errors import BudgetExceeded, ConfigurationError, LMCallError
from promptomatix.lm.types import ChatModel
from promptomatix.task import heuristics as h
from promptomatix.task.answers import FIELD_TYPES, teacher_fields, teacher_labels, valid_prompt, valid_row
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


def infer_task_spec(
    description: str,
    *,
    teacher: ChatModel | None,
    given: SpecOverrides | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
) -> TaskSpec:
    """Build a valid TaskSpec. `rows` (user data) fixes fields and labels without asking the teacher."""
    g = given or SpecOverrides()
    notes: list[str] = []
    given_parts: list[str] = []
    desc = (g.task_description or description or "").strip()
    if not desc:
        raise ConfigurationError("no task description", hint='pass one, e.g. promptomatix optimize "Classify ..."')
    given_parts.append("description")

    task_type = parse_task_type(g.task_type) if g.task_type else None
    sample_rows = parse_sample_data(g.sample_data) if g.sample_data else []
    inputs = as_fields(g.input_fields) if g.input_fields else None
    outputs = as_fields(g.output_fields) if g.output_fields else None
    labels = list(g.labels) if g.labels else None
    if outputs and not labels:
        labels = next((f.labels for f in outputs if f.labels), None)
    for part, value in (
        ("task_type", task_type),
        ("input_fields", inputs),
        ("output_fields", outputs),
        ("labels", labels),
        ("output_format", g.output_format),
        ("sample_rows", sample_rows),
        ("initial_prompt", g.initial_prompt),
        ("constraints", g.constraints),
    ):
        if value:
            given_parts.append(part)

    # Data decides fields (and later labels) deterministically: no model is needed to read column names.
    data = list(rows or []) or sample_rows
    data_hint: str | None = None
    if data and not (inputs and outputs):
        in_names, out_names, how = h.fields_from_rows(
            data, [f.name for f in inputs] if inputs else None, [f.name for f in outputs] if outputs else None
        )
        if not in_names or not out_names:
            raise ConfigurationError("cannot tell input from output columns in the data", hint="pass --output-fields")
        types = {c: h.value_type(r.get(c) for r in data) for c in in_names + out_names}
        inputs = inputs or [FieldSpec(name=n, type=types[n]) for n in in_names]  # type: ignore[arg-type]
        outputs = outputs or [FieldSpec(name=n, type=types[n]) for n in out_names]  # type: ignore[arg-type]
        notes.append(f"fields taken from the data columns ({how})")
    if data and outputs and h.looks_like_labels([r.get(outputs[0].name) for r in data]):
        data_hint = TaskType.CLASSIFICATION

    explicit_labels = h.extract_labels(desc)
    # Call 1: only the parts still unknown, so the teacher cannot overwrite what was given.
    props: dict[str, Any] = {}
    if task_type is None:
        props["task_type"] = {"type": "string", "enum": known_task_types()}
    if inputs is None:
        props["input_fields"] = _FIELD_LIST_SCHEMA
    if outputs is None:
        props["output_fields"] = _FIELD_LIST_SCHEMA
    if labels is None and not data and not explicit_labels and (task_type is None or label_kind(task_type)):
        props["labels"] = {"type": "array", "items": {"type": "string"}}
    if g.output_format is None:
        props["output_format"] = {"type": ["string", "null"]}
    answer: dict[str, Any] = {}
    if props and teacher is not None:
        known = [f"Task description: {desc}"]
        if task_type:
            known.append(f"Task type (fixed): {task_type}")
        if inputs:
            known.append(f"Inputs (fixed): {', '.join(f.name for f in inputs)}")
        if outputs:
            known.append(f"Outputs (fixed): {', '.join(f.name for f in outputs)}")
        prompt = "\n".join(
            [
                *known,
                "",
                f"Fill in these keys: {', '.join(props)}.",
                "task_type is one of: " + ", ".join(known_task_types()) + "." if "task_type" in props else "",
                "Fields are short snake_case names with a type and a one-line description."
                if "input_fields" in props or "output_fields" in props
                else "",
                "labels: the closed set of class names, if the task is classification." if "labels" in props else "",
            ]
        ).strip()
        answer = _ask(teacher, prompt, _object_schema(props), notes, "the task spec")
    elif props:
        notes.append("no teacher model: spec parts inferred by keyword rules")

    if task_type is None:
        name = answer.get("task_type")
        found = task_type_registry().get(name) if isinstance(name, str) else None
        task_type = found.name if found else None
        if task_type is not None:
            notes.append(f"task_type inferred by teacher ({task_type})")
        elif data_hint is not None:
            task_type = data_hint
            notes.append(f"task_type from the data: short repeated output values → {task_type}")
        else:
            task_type = h.guess_task_type(desc)
            notes.append(f"task_type fell back to keyword rules on the description → {task_type}")

    default_in, default_out = h.default_fields(task_type, desc)
    if inputs is None:
        inputs = teacher_fields(answer.get("input_fields"), set())
        if inputs:
            notes.append(f"input fields inferred by teacher ({', '.join(f.name for f in inputs)})")
        else:
            inputs = default_in
            notes.append(f"input fields fell back to defaults for {task_type} ({inputs[0].name})")
    taken = {f.name for f in inputs}
    if outputs is None:
        outputs = teacher_fields(answer.get("output_fields"), taken)
        if outputs:
            notes.append(f"output fields inferred by teacher ({', '.join(f.name for f in outputs)})")
        else:
            name = default_out[0].name if default_out[0].name not in taken else "output"
            outputs = [FieldSpec(name=name)]
            notes.append(f"output field fell back to the default for {task_type} ({name})")

    if label_kind(task_type) and outputs[0].type == "str":
        multi = label_kind(task_type) == "multi"
        if labels is None and data:
            labels = h.discover_labels(data, outputs[0].name, multi=multi) or None
            if labels and len(labels) > MAX_LABELS:
                notes.append(f"{len(labels)} distinct output values in the data: too many for a label set")
                labels = None
            elif labels:
                notes.append(f"labels discovered from the data ({', '.join(labels)})")
        if labels is None and explicit_labels:
            labels = explicit_labels
            notes.append(f"labels read from the description ({', '.join(labels)})")
        if labels is None:
            labels = teacher_labels(answer.get("labels"))
            if labels:
                notes.append(f"labels inferred by teacher ({', '.join(labels)})")
        if labels is None:
            labels = h.guess_labels(desc)
            if labels:
                notes.append(f"labels fell back to keyword rules ({', '.join(labels)})")
            else:
                notes.append("no label set found: class names are free text")
        if labels:
            outputs = [outputs[0].model_copy(update={"labels": labels}), *outputs[1:]]

    output_format = g.output_format
    if output_format is None:
        value = answer.get("output_format")
        if isinstance(value, str) and value.strip() and len(value) <= 500:
            if len(re.findall(r"[^\W\d_]+", value)) >= 2:
                output_format = value.strip()
                notes.append("output_format inferred by teacher")
            else:  # a small teacher answers "json", "classification", "response": a word, not a format
                notes.append(f"output_format from the teacher ignored ({value.strip()!r} does not describe a format)")

    fields = [*inputs, *outputs]
    if data and not sample_rows:
        sample_rows = [r for r in (valid_row(fields, row) for row in data[:10]) if r][:3]
    initial_prompt = g.initial_prompt
    # Call 2: sample rows, only when still missing. The initial prompt is never the teacher's: it is the baseline
    # the optimizer must beat, so it stays the user's own words (a small teacher's rewrite is usually worse).
    if not sample_rows and teacher is not None:
        props2: dict[str, Any] = {}
        if not sample_rows:
            row_schema = _object_schema({f.name: f.json_schema() for f in fields})
            props2["sample_rows"] = {"type": "array", "items": row_schema, "minItems": 1, "maxItems": 3}
        prompt = "\n".join(
            [
                f"Task description: {desc}",
                f"Task type: {task_type}",
                "Fields: " + ", ".join(f"{f.name} ({f.type})" for f in fields),
                f"Labels: {', '.join(outputs[0].labels)}" if outputs[0].labels else "",
                "",
                "Write up to 3 realistic example rows with every field (sample_rows)."
                if "sample_rows" in props2
                else "",
                "Write a clear instruction prompt for this task (initial_prompt)."
                if "initial_prompt" in props2
                else "",
            ]
        ).strip()
        answer2 = _ask(teacher, prompt, _object_schema(props2), notes, "sample rows and initial prompt")
        if "sample_rows" in props2:
            got = answer2.get("sample_rows")
            sample_rows = (
                [r for r in (valid_row(fields, row) for row in got or []) if r][:3] if isinstance(got, list) else []
            )
            notes.append(
                f"{len(sample_rows)} sample rows written by teacher" if sample_rows else "no usable sample rows"
            )
        if "initial_prompt" in props2:
            initial_prompt = valid_prompt(answer2.get("initial_prompt"))
            if initial_prompt:
                notes.append("initial prompt written by teacher")
    whose = "your prompt" if "initial_prompt" in given_parts else "the teacher's prompt"
    if not initial_prompt:
        whose = "the prompt built from the description"
        initial_prompt = h.build_initial_prompt(
            desc,
            input_names=[f.name for f in inputs],
            output_names=[f.name for f in outputs],
            labels=outputs[0].labels,
            output_format=output_format,
            constraints=g.constraints or [],
        )
        notes.append("initial prompt built from the description")

    for note in notes:
        log.info("spec: %s", note)
    try:
        spec = TaskSpec(
            description=desc,
            task_type=task_type,
            input_fields=inputs,
            output_fields=outputs,
            output_format=output_format,
            constraints=list(g.constraints or []),
            sample_rows=sample_rows,
            initial_prompt=initial_prompt,
            assumptions=notes,
            given=given_parts,
        )
    except ValidationError as exc:
        raise ConfigurationError(f"invalid task spec: {exc.errors()[0]['msg']}") from None
    return with_label_line(spec, whose)


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
