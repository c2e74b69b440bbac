"""What the teacher is asked when it writes synthetic rows: the seeded diversity hints, the prompts and the schemas.

Split from synthetic.py. The batch index never appears in the request text: the embedded teacher copied
"this is batch 22" into rows (synthetic_checks.py now rejects such rows).
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from promptomatix.data.synthetic_checks import format_examples

if TYPE_CHECKING:
    from promptomatix.data.synthetic import _Plan
    from promptomatix.task.models import TaskSpec

TOPICS = (
    "everyday life",
    "work and business",
    "technology",
    "travel",
    "food and cooking",
    "health",
    "sports",
    "film and music",
    "science",
    "education",
    "family and friends",
    "money and shopping",
    "nature and weather",
    "history",
    "games and hobbies",
    "home and housing",
)
LENGTHS = ("very short (a few words)", "short (one sentence)", "medium (two or three sentences)", "long (a paragraph)")
STYLES = ("casual", "formal", "terse", "enthusiastic", "matter-of-fact", "informal with typos", "technical")
SYSTEM = "You write realistic, varied training examples for a task. Reply with JSON only, no prose."


def diversity_hint(seed: int, index: int) -> str:
    """Seeded per batch: the same seed gives the same hints, a new seed new ones."""
    rng = random.Random(f"synthetic:{seed}:{index}")
    return f"topic: {rng.choice(TOPICS)}; length: {rng.choice(LENGTHS)}; style: {rng.choice(STYLES)}"


def batch_schema(spec: TaskSpec) -> dict[str, Any]:
    """JSON schema of one batch answer: {"examples": [row, ...]} with typed fields and the label enum."""
    row = {
        "type": "object",
        "properties": {f.name: f.json_schema() for f in spec.fields},
        "required": spec.input_names + spec.output_names,
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"examples": {"type": "array", "items": row}},
        "required": ["examples"],
        "additionalProperties": False,
    }


def batch_prompt(spec: TaskSpec, plan: _Plan) -> str:
    def describe(f: Any) -> str:
        extra = f", one of: {', '.join(f.labels)}" if f.labels else ""
        return f"- {f.name} ({f.type}{extra}){': ' + f.description if f.description else ''}"

    lines = [
        f"Task: {spec.description}",
        "Input fields:",
        *(describe(f) for f in spec.input_fields),
        "Output fields (the correct answer for the inputs):",
        *(describe(f) for f in spec.output_fields),
        f"Write {plan.count} new, realistic examples, each different from the others.",
    ]
    if plan.labels and spec.label_field:
        lines.append(f"The {spec.label_field} of each example, in order: {', '.join(plan.labels)}.")
    lines.append(f"Diversity for batch {plan.index}: {plan.hint}.")
    if examples := format_examples(spec):
        shown = json.dumps(examples, ensure_ascii=False)
        lines.append(f"Examples of the format (do not copy them): {shown}")
    keys = ", ".join(spec.input_names + spec.output_names)
    lines.append(f'Reply with JSON: {{"examples": [{{{keys}}}, ...]}}')
    return "\n".join(lines)


def single_schema(spec: TaskSpec, label: str | None) -> dict[str, Any]:
    """One example as a flat object; with the label fixed by us, the model only writes the other fields."""
    fields = [f for f in spec.fields if not (label is not None and f.name == spec.label_field)]
    props: dict[str, Any] = {}
    for f in fields:
        schema = dict(f.json_schema())
        schema.pop("description", None)
        if schema.get("type") == "string" and "enum" not in schema:
            schema.update({"minLength": 12 if f in spec.input_fields else 1, "maxLength": 600})
        props[f.name] = schema
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def single_prompt(spec: TaskSpec, plan: _Plan) -> str:
    """Small teachers cannot fill arrays of examples; one example whose label we chose is within reach."""
    label = plan.labels[0] if plan.labels else None
    want = ", ".join(f.name for f in spec.fields if not (label is not None and f.name == spec.label_field))
    lines = [f"Task: {spec.description}"]
    if label is not None:
        lines.append(f"Write one realistic example input whose correct {spec.label_field} is: {label}.")
    else:
        lines.append("Write one realistic example: the input and its correct output.")
    lines.append(f"Vary it ({plan.hint}).")
    lines.append(f"Reply with JSON with the keys: {want}.")
    return "\n".join(lines)
