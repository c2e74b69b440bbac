"""A prompt candidate and how the task model sees it: system instructions, demos as prior turns, JSON output.

The task model answers in JSON constrained by the spec's schema (labels become an enum), which is what makes
small local models parse reliably. `render()` returns the exact text the model reads, for sessions and export.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel
    from promptomatix.task.models import TaskSpec


class PromptCandidate(BaseModel):
    """Instructions, optional few-shot demos and an optional explicit output-format line."""

    model_config = ConfigDict(extra="forbid")

    instructions: str
    demos: list[dict[str, Any]] = Field(default_factory=list)
    format_line: str | None = None
    origin: str = "initial"

    def system_text(self) -> str:
        parts = [self.instructions.strip()]
        if self.format_line:
            parts.append(self.format_line.strip())
        return "\n\n".join(p for p in parts if p)

    def messages(self, spec: TaskSpec, row: dict[str, Any]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system_text()}]
        for demo in self.demos:
            msgs.append({"role": "user", "content": format_inputs(spec, demo)})
            msgs.append({"role": "assistant", "content": format_outputs(spec, demo)})
        msgs.append({"role": "user", "content": format_inputs(spec, row)})
        return msgs

    def render(self, spec: TaskSpec) -> str:
        """The prompt as the model sees it, with `{field}` placeholders where each input goes."""
        placeholder = {name: "{" + name + "}" for name in spec.input_names}
        lines = [f"[system]\n{self.system_text()}"]
        for demo in self.demos:
            lines.append(f"[user]\n{format_inputs(spec, demo)}")
            lines.append(f"[assistant]\n{format_outputs(spec, demo)}")
        lines.append(f"[user]\n{format_inputs(spec, placeholder)}")
        return "\n\n".join(lines)

    def penalty_text(self, spec: TaskSpec) -> str:
        """What the length penalty counts: the instructions and format line minus the contract lines (labels, output
        format), so no candidate gains by dropping what the task needs. Demos are not counted, as upstream's λ
        counts instruction words: counting them made λ = 0.005 pick one SMS demo per label (0.67 accuracy) over
        three (0.96) on spam (benchmarks/results/suite-qwen/PLAN.md). What they cost per call is on the Pareto
        front (`tokens`), and ties go to the prompt with less to read (`read_text`)."""
        from promptomatix.backends.contract import without_contract

        return without_contract(self.system_text(), spec)

    def read_text(self, spec: TaskSpec) -> str:
        """The penalty text plus the demos: all the model reads on every call but the row itself."""
        demo_text = "\n".join(format_inputs(spec, d) + "\n" + format_outputs(spec, d) for d in self.demos)
        return "\n".join(p for p in (self.penalty_text(spec), demo_text) if p)

    def words_read(self, spec: TaskSpec) -> int:
        """Words of `read_text`: what a tie on raw quality is decided by (the λ penalty counts no demos)."""
        return len(self.read_text(spec).split())

    def key(self) -> str:
        return json.dumps([self.instructions.strip(), self.demos, self.format_line], sort_keys=True, default=str)


def format_inputs(spec: TaskSpec, row: dict[str, Any]) -> str:
    return "\n".join(f"{name}: {row.get(name, '')}" for name in spec.input_names)


def format_outputs(spec: TaskSpec, row: dict[str, Any]) -> str:
    return json.dumps({name: row.get(name) for name in spec.output_names}, ensure_ascii=False)


def output_schema(spec: TaskSpec) -> dict[str, Any]:
    """JSON schema of the task model's answer. Labels are an enum, so a grammar makes them always parse."""
    props: dict[str, Any] = {}
    for f in spec.output_fields:
        schema = dict(f.json_schema())
        schema.pop("description", None)
        if schema.get("type") == "array":
            schema["items"] = {"type": "string"}
        if f.type == "json" and not schema:
            schema = {"type": "object"}
        if schema.get("type") == "string" and "enum" not in schema:
            schema["maxLength"] = 2000
        props[f.name] = schema
    return {"type": "object", "properties": props, "required": list(props)}


def max_tokens_for(spec: TaskSpec) -> int:
    if spec.labels and len(spec.output_fields) == 1:
        return 48
    kind = spec.task_type
    if kind in ("summarization", "qa", "classification", "multi_label_classification", "reasoning"):
        return 160
    return 320


def parse_output(spec: TaskSpec, text: str) -> dict[str, Any]:
    """Parse the model's JSON answer; if it is not JSON, the raw text becomes the first output field."""
    data: Any = None
    stripped = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.S)
    if fence:
        stripped = fence.group(1).strip()
    try:
        data = json.loads(stripped)
    except (json.JSONDecodeError, ValueError):
        try:
            import json_repair

            data = json_repair.loads(stripped)
        except Exception:
            data = None
    if isinstance(data, dict) and any(name in data for name in spec.output_names):
        return {name: data.get(name) for name in spec.output_names}
    return {spec.output_names[0]: text.strip(), **{n: None for n in spec.output_names[1:]}}


class PromptProgram:
    """Runs one candidate on the task model; used by the meta backend and by final evaluation."""

    def __init__(self, candidate: PromptCandidate, spec: TaskSpec, lm: ChatModel) -> None:
        self.candidate = candidate
        self.spec = spec
        self.lm = lm
        self._schema = output_schema(spec)
        self._max_tokens = max_tokens_for(spec)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text = self.lm.chat(
            self.candidate.messages(self.spec, row), json_schema=self._schema, max_tokens=self._max_tokens
        )
        return parse_output(self.spec, text)
