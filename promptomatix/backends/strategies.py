"""Meta-prompt strategies: how a round proposes a new candidate from the current best.

Template strategies ask the teacher model with a meta-prompt (built-in templates ship as text files; users add
their own with `--meta-prompt FILE` or `StrategyRegistry.register`). Procedural strategies (demos, format line)
need no teacher: they matter most when the teacher is as small as the task model.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any, Protocol

from promptomatix.backends.contract import is_contract_line, labels_of, names, restore_labels
from promptomatix.backends.prompt import PromptCandidate, format_inputs, format_outputs
from promptomatix.backends.template_feedback import FEEDBACK_HEADER, with_feedback
from promptomatix.errors import ConfigurationError

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel
    from promptomatix.task.models import TaskSpec

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
_ANSWER_SCHEMA = {"type": "object", "properties": {"prompt": {"type": "string", "minLength": 10, "maxLength": 1200}},
                  "required": ["prompt"]}  # fmt: skip


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
    max_demos: int = 8
    teacher: ChatModel | None = None
    temperature: float = 0.7
    pool: list[PromptCandidate] = field(default_factory=list)  # the kept candidates, best first
    seen: frozenset[str] = frozenset()  # keys of every candidate tried so far
    initial: PromptCandidate | None = None  # the user's prompt: what the guards compare a candidate with

    def is_new(self, cand: PromptCandidate) -> bool:
        return cand.key() not in self.seen


class Strategy(Protocol):
    """`uses_teacher`: it asks the teacher model. A strategy may also set `needs_failures = False` when it never
    reads `ctx.failures`: the meta backend then proposes and scores it without waiting for the best's minibatch
    (strategies without the attribute wait, as the templates do)."""

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


class ProposalRejected(Exception):
    """A teacher answer that parsed but is junk; the reason goes into the candidate's note."""


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _shingles(words: list[str], n: int = 5) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def echoes(prompt: str, template: str, allowed: str = "") -> bool:
    """True when most of the proposal is copied, five words in a row, from the meta-prompt's own text (and its
    advice, when the template shows advice) rather than from `allowed` (the task and the current prompt): a
    small teacher answering "Which values are allowed, in what form, and nothing else?" has echoed its
    instructions, and a short echo can win on the length penalty alone."""
    static = re.sub(r"\$\{?\w+\}?", " | ", template)
    if "$tip" in template or "${tip}" in template:
        static += " | " + " | ".join(TIPS)
    words = _words(prompt)
    copied = _shingles(_words(static)) - _shingles(_words(allowed))
    covered: set[int] = set()
    for i in range(len(words) - 4):
        if tuple(words[i : i + 5]) in copied:
            covered.update(range(i, i + 5))
    return len(covered) > 0.6 * len(words)


_GENERIC = frozenset(
    {
        "this", "that", "with", "from", "your", "have", "what", "which", "there", "their", "about", "into",
        "each", "only", "will", "would", "should", "could", "must", "when", "then", "than", "them", "they",
        "these", "those", "also", "just", "more", "most", "some", "such", "very", "give", "given", "using",
        "write", "prompt", "task", "model", "following", "the", "and", "for", "you", "are", "not", "its",
    }
)  # fmt: skip
#: Words that show a rewrite talks about the task at hand whatever the task is.
_TASK_TALK = "input output answer label category class classify classification decide choose pick"


#: Scripts written without spaces between words (CJK, kana, hangul, Thai): no word comparison there.
_NO_SPACES = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")
_SUFFIXES = ("ers", "er", "es", "s", "ed", "ing", "ly")


def _stem(word: str) -> str:
    """A crude stem: one suffix off, then 7 characters (review/reviewer, question/questions, classify/
    classification; but describe/description stay apart)."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)]
            break
    return word[:7]


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in _words(text.replace("_", " ")) if len(w) >= 3 and w not in _GENERIC and not w.isdigit()}


def off_task(prompt: str, spec: TaskSpec, current: str = "") -> bool:
    """True when a rewrite shares no content word with the task (its sentence, labels, field names, the current
    prompt): "Describe a task using this prompt" once won on trec's 12 valid rows, riding on its demos. When
    the task offers no words to compare (e.g. a script without spaces), nothing is rejected."""
    task = " ".join([spec.description, spec.initial_prompt, current, *(spec.labels or []), *spec.input_names,
                     *spec.output_names])  # fmt: skip
    vocab = _stems(task)
    if not vocab or _NO_SPACES.search(task + prompt):
        return False
    return not (_stems(prompt) & (vocab | _stems(_TASK_TALK)))


#: A 135M teacher often echoes the failure list back as the "prompt", or a placeholder from the template.
_COPIED_MARKERS = re.compile(
    r"\|\s*(expected|got):|^input:|Reply as JSON|Earlier prompts and their scores", re.I | re.M
)
_PLACEHOLDER = re.compile(r"<[^<>]{1,80}>\.?")


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
    if _COPIED_MARKERS.search(prompt) or _PLACEHOLDER.fullmatch(prompt):
        return None
    return prompt


@dataclass
class TemplateStrategy:
    """Ask the teacher with a meta-prompt template; keep the best's demos and format line."""

    name: str
    template: str
    uses_teacher: bool = True
    needs_failures: bool = True

    def __post_init__(self) -> None:
        if "$current_prompt" not in self.template and "${current_prompt}" not in self.template:
            raise ConfigurationError(
                f"meta-prompt template '{self.name}' never shows the current prompt",
                hint="include $current_prompt (placeholders: " + ", ".join("$" + p for p in PLACEHOLDERS) + ")",
            )

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        if ctx.teacher is None:
            return None
        template = with_feedback(self.template, bool(ctx.feedback))
        content = _fill(Template(template), ctx)
        text = ctx.teacher.chat(
            [{"role": "user", "content": content}],
            json_schema=_ANSWER_SCHEMA,
            max_tokens=400,
            temperature=ctx.temperature,
        )
        instructions = parse_prompt_answer(text)
        if instructions is None:
            return None
        allowed = " ".join([ctx.spec.description, ctx.best.instructions])
        if echoes(instructions, template, allowed) or (template is not self.template and FEEDBACK_HEADER in instructions):
            raise ProposalRejected("teacher answer rejected: it copies the meta-prompt")
        if off_task(instructions, ctx.spec, ctx.best.instructions):
            raise ProposalRejected("teacher answer rejected: no word in common with the task")
        named = [lab for lab in labels_of(ctx.spec) if names(ctx.best.system_text(), lab)]
        instructions = restore_labels(instructions, ctx.spec, named)  # the teacher may drop the label line
        return ctx.best.model_copy(update={"instructions": instructions, "origin": self.name})


#: Without labels to cover (or with more labels than `max_demos`), a demo set has 1 to this many examples.
MAX_RANDOM_DEMOS = 3
#: With few labels, a demo set shows 1 to this many examples of each (as many as `max_demos` allows).
MAX_PER_LABEL = 4


@dataclass
class DemoStrategy:
    """Attach few-shot demos from the train split, balanced over the labels when there are at most `max_demos`:
    one per label on many-label tasks (trec, 6 labels: +0.2 to +0.37 with the 135M model), 1 to 4 per label on
    few-label ones (qwen2.5-0.5b on spam s0's valid rows: 0.54 with none, 0.67 with one per label, 0.96 with three;
    benchmarks/results/suite-qwen/PLAN.md). Each proposal draws a fresh set, so a round can compare several."""

    name: str = "add_demos"
    uses_teacher: bool = False
    needs_failures: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        rows = [r for r in ctx.train if all(r.get(n) not in (None, "") for n in ctx.spec.output_names)]
        if not rows or ctx.max_demos < 1:
            return None
        for _ in range(4):  # a few draws, so a set already tried does not waste the slot
            cand = ctx.best.model_copy(update={"demos": self._draw(ctx, rows), "origin": self.name})
            if cand.demos != ctx.best.demos and ctx.is_new(cand):
                return cand
        return None

    def _draw(self, ctx: ProposalContext, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        label = ctx.spec.label_field
        by_label: dict[str, list[dict[str, Any]]] = {}
        for r in rows if label else []:
            by_label.setdefault(str(r[label]), []).append(r)
        groups = [ctx.rng.sample(g, len(g)) for g in by_label.values()]
        if groups and len(groups) <= ctx.max_demos:  # every label, the same number of each, interleaved
            fewest = min(len(g) for g in groups)  # a rare label caps the others: the set stays balanced
            per = ctx.rng.randint(1, max(1, min(MAX_PER_LABEL, ctx.max_demos // len(groups), fewest)))
            ctx.rng.shuffle(groups)
            picked = [g[i] for i in range(per) for g in groups if i < len(g)]
        elif groups:  # more labels than slots: 1 to 3 examples of different labels
            k = ctx.rng.randint(1, min(ctx.max_demos, MAX_RANDOM_DEMOS))
            picked = [g[0] for g in ctx.rng.sample(groups, min(k, len(groups)))]
        else:
            picked = ctx.rng.sample(rows, min(ctx.rng.randint(1, min(ctx.max_demos, MAX_RANDOM_DEMOS)), len(rows)))
        return [{n: r.get(n) for n in ctx.spec.input_names + ctx.spec.output_names} for r in picked]


@dataclass
class DropLineStrategy:
    """Remove one line (or sentence) of the instructions, never the first and never a contract line (labels,
    output format): scaffold lines can hurt a small model (MIPROv2's best sentiment prompt was the user's bare
    sentence), and shorter prompts pay less penalty, but the exported prompt must still say what to answer."""

    name: str = "drop_line"
    uses_teacher: bool = False
    needs_failures: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        text = ctx.best.instructions.strip()
        parts = [p for p in text.split("\n") if p.strip()]
        sep = "\n"
        if len(parts) < 2:
            parts, sep = [p for p in re.split(r"(?<=[.!?])\s+", text) if p.strip()], " "
        options = []
        for i in range(1, len(parts)):
            if is_contract_line(parts[i], ctx.spec):  # the label set / output format: never traded for length
                continue
            cand = ctx.best.model_copy(
                update={"instructions": sep.join(parts[:i] + parts[i + 1 :]), "origin": self.name}
            )
            if ctx.is_new(cand):
                options.append(cand)
        return ctx.rng.choice(options) if options else None


@dataclass
class CombineStrategy:
    """Join the parts of two kept candidates: one's instructions with the other's demos and format line. This
    is the joint instruction × demo search that makes MIPROv2 strong, done with no teacher calls."""

    name: str = "combine"
    uses_teacher: bool = False
    needs_failures: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        best = ctx.best
        options = []
        for other in ctx.pool:
            for a, b in ((best, other), (other, best)):
                for fmt in dict.fromkeys((a.format_line, b.format_line)):  # ordered: seeded runs repeat
                    cand = PromptCandidate(
                        instructions=a.instructions, demos=b.demos, format_line=fmt, origin=self.name
                    )
                    if ctx.is_new(cand):
                        options.append(cand)
        return ctx.rng.choice(options) if options else None


@dataclass
class FormatStrategy:
    """Add an explicit output-format line derived from the spec (labels, types), or drop it when the best has it."""

    name: str = "format_line"
    uses_teacher: bool = False
    needs_failures: bool = False

    def propose(self, ctx: ProposalContext) -> PromptCandidate | None:
        parts = []
        for f in ctx.spec.output_fields:
            if f.labels:
                parts.append(f"'{f.name}' must be exactly one of: {', '.join(f.labels)}.")
            elif f.type in ("int", "float") or ctx.spec.task_type == "reasoning":
                parts.append(f"'{f.name}' must be only the final number, with no words.")
            else:
                parts.append(f"'{f.name}' must be short and contain only the answer.")
        line = "Answer in JSON. " + " ".join(parts)
        cand = ctx.best.model_copy(update={"format_line": None if ctx.best.format_line == line else line})
        cand.origin = self.name
        return cand if ctx.is_new(cand) else None


BUILTIN_TEMPLATES = ("rewrite_from_failures", "add_format", "rephrase", "compress")
#: Every built-in strategy's name: never a plugin's to take.
BUILTIN_STRATEGIES = frozenset({*BUILTIN_TEMPLATES, "add_demos", "format_line", "drop_line", "combine"})


def _builtin_template(name: str) -> str:
    return resources.files("promptomatix.backends").joinpath(f"templates/{name}.txt").read_text(encoding="utf-8")


@dataclass
class StrategyRegistry:
    """Per-run registry of strategies; starts with the built-ins and takes user templates."""

    strategies: dict[str, Strategy] = field(default_factory=dict)

    @classmethod
    def default(cls) -> StrategyRegistry:
        reg = cls()
        for name in BUILTIN_TEMPLATES:
            reg.register(TemplateStrategy(name, _builtin_template(name)))
        for procedural in (DemoStrategy(), FormatStrategy(), DropLineStrategy(), CombineStrategy()):
            reg.register(procedural)
        return reg

    def register(self, strategy: Strategy) -> None:
        """A name already taken is refused: a plugin's template named `add_demos` replaced the demo search without
        a word (review 32)."""
        if strategy.name in self.strategies:
            raise ConfigurationError(f"meta-prompt strategy {strategy.name!r} is already registered",
                                     hint="register it under another name")  # fmt: skip
        self.strategies[strategy.name] = strategy

    def register_template_file(self, path: str | Path, name: str | None = None) -> str:
        """A `--meta-prompt` file as a strategy; two files with one stem (`a/x.txt`, `b/x.txt`) both run."""
        strategy = template_file_strategy(path, name)
        base, n = strategy.name, 2
        while name is None and strategy.name in self.strategies:
            strategy.name, n = f"{base}-{n}", n + 1
        self.register(strategy)
        return strategy.name

    def get(self, name: str) -> Strategy:
        if (found := self.strategies.get(name)) is None:
            import difflib

            close = difflib.get_close_matches(name, list(self.strategies), n=1)
            known = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(f"unknown meta-prompt strategy '{name}'",
                                     hint=f"{known}known: {', '.join(sorted(self.strategies))}")  # fmt: skip
        return found


def template_file_strategy(path: str | Path, name: str | None = None) -> TemplateStrategy:
    """A missing, unreadable or non-UTF-8 file is one line naming the fix (it raised a traceback's last line)."""
    p = Path(path)  # (run.inputs builds one the same way before the session opens)
    if not p.is_file():
        raise ConfigurationError(f"meta-prompt file not found: {p}", hint="pass --meta-prompt PATH to a text file")
    try:
        return TemplateStrategy(name or f"user:{p.stem}", p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigurationError(f"cannot read meta-prompt file {p}: {type(e).__name__}", hint="use UTF-8") from None


def demo_text(spec: TaskSpec, demos: list[dict[str, Any]]) -> str:
    return "\n".join(format_inputs(spec, d) + " -> " + format_outputs(spec, d) for d in demos)
