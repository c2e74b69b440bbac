"""Meta-prompt strategies: how a round proposes a new candidate from the current best.

Template strategies ask the teacher model with a meta-prompt (built-in templates ship as text files; users add
their own with `--meta-prompt FILE` or `StrategyRegistry.register`). Procedural strategies (demos, format line)
need no teacher: they matter most when the teacher is as small as the task model.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, Protocol

from promptomatix.backends.prompt import PromptCandidate, format_inputs, format_outputs
from promptomatix.errors import ConfigurationError

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel
    from promptomatix.spec.models import TaskSpec

PLACEHOLDERS = ("task", "outputs", "current_prompt", "score", "history", "failures", "feedback", "tip")
#: One is drawn per proposal (seeded): varied advice makes a small teacher's candidates differ from each other.
TIPS = (
    "State the rule that decides between the possible answers in one sentence.",
    "Name the cues in the input that point to each answer.",
    "Be short: one or two plain sentences.",
    "Say how to handle unclear or mixed inputs.",
    "Write it as a direct order to the model, starting with a verb.",
    "Give the model a role, such as an expert reviewer, then the task.",
)
_ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string", "minLength": 10, "maxLength": 1200}},
    "required": ["prompt"],
}


@dataclass
class ProposalContext:
    """What a strategy may look at when proposing."""

    spec: TaskSpec
    best: PromptCandidate
    best_score: float
    history: list[tuple[str, float]]  # (instructions, valid score), best first
    failures: list[dict[str, Any]]  # {"input", "expected", "got", "feedback"}
    feedback: list[str]
    train: list[dict[str, Any]]
    rng: random.Random
    max_demos: int = 3
    teacher: ChatModel | None = None
    temperature: float = 0.7


class Strategy(Protocol):
    name: str
    uses_teacher: bool

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None: ...


def _bullets(items: list[str], empty: str) -> str:
    return "\n".join(f"- {i}" for i in items) if items else empty


def _fill(template: Template, ctx: ProposalContext) -> str:
    outputs = ", ".join(
        f"{f.name} (one of: {', '.join(f.labels)})" if f.labels else f"{f.name} ({f.type})"
        for f in ctx.spec.output_fields
    )
    failures = [
        f"input: {str(f['input'])[:300]} | expected: {f['expected']} | got: {f['got']} | {f['feedback']}"
        for f in ctx.failures[:5]
    ]
    return template.safe_substitute(
        task=ctx.spec.description,
        outputs=outputs,
        current_prompt=ctx.best.instructions,
        score=f"{ctx.best_score:.2f}",
        history=_bullets([f"{s:.2f}: {p[:200]}" for p, s in ctx.history[:4]], "(none yet)"),
        failures=_bullets(failures, "(none found on the sample)"),
        feedback=_bullets(ctx.feedback, "(none)"),
        tip=ctx.rng.choice(TIPS),
    )


def parse_prompt_answer(text: str) -> str | None:
    """The new instructions from the teacher's JSON answer, or None when unusable (junk from small models)."""
    try:
        data = json.loads(text)
        prompt = data.get("prompt") if isinstance(data, dict) else None
    except (json.JSONDecodeError, ValueError):
        prompt = text
    if not isinstance(prompt, str):
        return None
    prompt = prompt.strip().strip('"').strip()
    if len(prompt.split()) < 4 or "<the new prompt>" in prompt or "$current_prompt" in prompt:
        return None
    return prompt


@dataclass
class TemplateStrategy:
    """Ask the teacher with a meta-prompt template; keep the best's demos and format line."""

    name: str
    template: str
    uses_teacher: bool = True

    def __post_init__(self) -> None:
        if "$current_prompt" not in self.template and "${current_prompt}" not in self.template:
            raise ConfigurationError(
                f"meta-prompt template '{self.name}' never shows the current prompt",
                hint="include $current_prompt (placeholders: " + ", ".join("$" + p for p in PLACEHOLDERS) + ")",
            )

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        if ctx.teacher is None:
            return None
        content = _fill(Template(self.template), ctx)
        text = ctx.teacher.chat(
            [{"role": "user", "content": content}],
            json_schema=_ANSWER_SCHEMA,
            max_tokens=400,
            temperature=ctx.temperature,
        )
        instructions = parse_prompt_answer(text)
        if instructions is None:
            return None
        return ctx.best.model_copy(update={"instructions": instructions, "origin": self.name})


@dataclass
class DemoStrategy:
    """Attach few-shot demos from the train split (balanced across labels); small models gain most from these."""

    name: str = "add_demos"
    uses_teacher: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        rows = [r for r in ctx.train if all(r.get(n) not in (None, "") for n in ctx.spec.output_names)]
        if not rows:
            return None
        k = ctx.rng.randint(1, max(1, ctx.max_demos))
        label = ctx.spec.label_field
        picked: list[dict[str, Any]] = []
        if label:
            by_label: dict[str, list[dict[str, Any]]] = {}
            for r in rows:
                by_label.setdefault(str(r[label]), []).append(r)
            groups = [ctx.rng.sample(g, len(g)) for g in by_label.values()]
            k = max(k, len(groups)) if len(groups) <= ctx.max_demos + 1 else k
            i = 0
            while len(picked) < min(k, len(rows)):
                group = groups[i % len(groups)]
                if group:
                    picked.append(group.pop())
                i += 1
                if not any(groups):
                    break
            ctx.rng.shuffle(picked)
        else:
            picked = ctx.rng.sample(rows, min(k, len(rows)))
        demos = [{n: r.get(n) for n in ctx.spec.input_names + ctx.spec.output_names} for r in picked]
        if demos == ctx.best.demos:
            return None
        return ctx.best.model_copy(update={"demos": demos, "origin": self.name})


@dataclass
class FormatStrategy:
    """Add an explicit output-format line derived from the spec (labels, types)."""

    name: str = "format_line"
    uses_teacher: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        parts = []
        for f in ctx.spec.output_fields:
            if f.labels:
                parts.append(f"'{f.name}' must be exactly one of: {', '.join(f.labels)}.")
            elif f.type in ("int", "float") or ctx.spec.task_type.value == "reasoning":
                parts.append(f"'{f.name}' must be only the final number, with no words.")
            else:
                parts.append(f"'{f.name}' must be short and contain only the answer.")
        line = "Answer in JSON. " + " ".join(parts)
        if ctx.best.format_line == line:
            return None
        return ctx.best.model_copy(update={"format_line": line, "origin": self.name})


def _builtin_template(name: str) -> str:
    return resources.files("promptomatix.backends").joinpath(f"templates/{name}.txt").read_text(encoding="utf-8")


@dataclass
class StrategyRegistry:
    """Per-run registry of strategies; starts with the built-ins and takes user templates."""

    strategies: dict[str, Strategy] = field(default_factory=dict)

    @classmethod
    def default(cls) -> StrategyRegistry:
        reg = cls()
        for name in ("rewrite_from_failures", "add_format", "rephrase", "compress"):
            reg.register(TemplateStrategy(name, _builtin_template(name)))
        reg.register(DemoStrategy())
        reg.register(FormatStrategy())
        return reg

    def register(self, strategy: Strategy) -> None:
        self.strategies[strategy.name] = strategy

    def register_template_file(self, path: str | Path, name: str | None = None) -> str:
        p = Path(path)
        if not p.is_file():
            raise ConfigurationError(f"meta-prompt file not found: {p}", hint="pass --meta-prompt PATH to a text file")
        strategy = TemplateStrategy(name or f"user:{p.stem}", p.read_text(encoding="utf-8"))
        self.register(strategy)
        return strategy.name

    def get(self, name: str) -> Strategy:
        try:
            return self.strategies[name]
        except KeyError:
            raise ConfigurationError(
                f"unknown meta-prompt strategy '{name}'", hint="known: " + ", ".join(sorted(self.strategies))
            ) from None


def demo_text(spec: TaskSpec, demos: list[dict[str, Any]]) -> str:
    return "\n".join(format_inputs(spec, d) + " -> " + format_outputs(spec, d) for d in demos)
