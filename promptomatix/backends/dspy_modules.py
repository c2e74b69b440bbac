"""DSPy programs built from a task spec: the typed signature, the module registry, rendering and saving.

A run wraps the chosen module (Predict, ChainOfThought, ReAct, ProgramOfThought or a user module) in
`SpecProgram`, which does one thing besides calling it: it tags each prediction with the text the length penalty
counts for the program that made it (its instructions and demos). The run's metric reads that tag, so during
DSPy's search every candidate program is penalized for its own length, on stock DSPy, without globals.

Nothing here configures DSPy: LMs and adapters are chosen per call with `dspy.context` by the run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import dspy

from promptomatix.backends.dspy_settings import BUILTIN_MODULES, normalize_module_name
from promptomatix.errors import ConfigurationError

if TYPE_CHECKING:
    from promptomatix.task.models import FieldSpec, TaskSpec

ModuleFactory = Callable[[type[dspy.Signature]], dspy.Module]

PENALTY_ATTR = "_promptomatix_penalty_text"  # private attribute on a dspy.Prediction (not an output field)
# User modules registered from Python (`register_module`). Runs only read it; a run's own modules are passed to
# DSPyOptimizer(modules=...) and take precedence.
_USER_MODULES: dict[str, ModuleFactory] = {}
_USER_LOCK = threading.Lock()


def register_module(name: str, factory: ModuleFactory) -> None:
    """Make `--dspy-module NAME` build `factory(signature)`, a dspy.Module whose keyword inputs are the spec's
    input fields and whose Prediction carries the spec's output fields."""
    key = normalize_module_name(name)
    if key in BUILTIN_MODULES:
        raise ConfigurationError(f"'{name}' is a built-in DSPy module name", hint="register it under another name")
    if not callable(factory):
        raise ConfigurationError(f"module factory for '{name}' is not callable")
    with _USER_LOCK:
        _USER_MODULES[key] = factory


def registered_modules() -> dict[str, ModuleFactory]:
    with _USER_LOCK:
        return dict(_USER_MODULES)


# -- signature ------------------------------------------------------------------------------------------------


def _annotation(f: FieldSpec, *, output: bool) -> Any:
    if f.labels:
        lit = Literal[tuple(f.labels)]  # type: ignore[valid-type]
        return list[lit] if f.type == "list" else lit  # type: ignore[valid-type]
    return {
        "str": str,
        "int": int,
        "float": float,
        "bool": bool,
        "list": list[str],
        "json": dict[str, Any] if output else Any,
    }[f.type]


def build_signature(spec: TaskSpec, instructions: str | None = None) -> type[dspy.Signature]:
    """The task as a typed DSPy signature: labels become `Literal[...]` (a JSON-schema enum for constrained
    decoding), int/float/bool/list fields keep their types, and the instructions are the initial prompt."""
    text = instructions if instructions is not None else (spec.initial_prompt or spec.description)
    fields: dict[str, tuple[Any, Any]] = {}
    for f in spec.input_fields:
        kw = {"desc": f.description} if f.description else {}
        fields[f.name] = (_annotation(f, output=False), dspy.InputField(**kw))
    for f in spec.output_fields:
        kw = {"desc": f.description} if f.description else {}
        fields[f.name] = (_annotation(f, output=True), dspy.OutputField(**kw))
    try:
        return dspy.Signature(fields, text.strip())
    except (TypeError, ValueError) as e:
        raise ConfigurationError(
            f"cannot build a DSPy signature from the task fields: {e}",
            hint="rename fields that clash with DSPy names (e.g. 'instructions')",
        ) from e


# -- the program wrapper --------------------------------------------------------------------------------------


class SpecProgram(dspy.Module):
    """The optimized module plus the penalty tag on each prediction. Its only parameters are the inner module's."""

    def __init__(self, program: dspy.Module, module_name: str) -> None:
        super().__init__()
        self.program = program
        self.module_name = module_name

    def forward(self, **kwargs: Any) -> Any:
        pred = self.program(**kwargs)
        if isinstance(pred, dspy.Prediction):
            setattr(pred, PENALTY_ATTR, penalty_text(self))
        return pred


def inner(program: dspy.Module) -> dspy.Module:
    return program.program if isinstance(program, SpecProgram) else program


def _demo_dict(demo: Any) -> dict[str, Any]:
    d = demo.toDict() if hasattr(demo, "toDict") else dict(demo)
    d.pop("augmented", None)
    return d


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def predictor_demos(predictor: Any) -> list[dict[str, Any]]:
    """A predictor's demos as plain dicts, restricted to its signature's fields."""
    names = list(predictor.signature.input_fields) + list(predictor.signature.output_fields)
    out = []
    for demo in predictor.demos:
        d = _demo_dict(demo)
        out.append({k: _jsonable(d[k]) for k in names if k in d})
    return out


def penalty_text(program: dspy.Module) -> str:
    """What the length penalty counts: every predictor's instructions, as the meta backend's
    PromptCandidate.penalty_text counts (demos are not counted; see there)."""
    return "\n".join(
        t for t in (pred.signature.instructions.strip() for _n, pred in inner(program).named_predictors()) if t
    )


def read_text(program: dspy.Module) -> str:
    """Every predictor's instructions and demos, formatted like the meta backend's PromptCandidate.read_text
    (inputs as 'name: value' lines, outputs as JSON), without DSPy's fixed field-structure boilerplate, which is the
    same for every candidate: ties go to the program with less to read, and programs are told apart by it."""
    parts: list[str] = []
    for _name, pred in inner(program).named_predictors():
        sig = pred.signature
        parts.append(sig.instructions.strip())
        for d in predictor_demos(pred):
            ins = "\n".join(f"{k}: {d[k]}" for k in sig.input_fields if k in d)
            outs = json.dumps({k: d[k] for k in sig.output_fields if k in d}, ensure_ascii=False)
            parts.append(f"{ins}\n{outs}")
    return "\n".join(p for p in parts if p)


def instructions_text(program: dspy.Module) -> str:
    preds = inner(program).named_predictors()
    if len(preds) == 1:
        return preds[0][1].signature.instructions
    return "\n\n".join(f"[{name}]\n{p.signature.instructions}" for name, p in preds)


def program_demos(program: dspy.Module) -> list[dict[str, Any]]:
    """All demos; with several predictors each demo names its predictor under '_predictor'."""
    preds = inner(program).named_predictors()
    if len(preds) == 1:
        return predictor_demos(preds[0][1])
    return [{"_predictor": name, **d} for name, p in preds for d in predictor_demos(p)]


def render_messages(messages: Sequence[dict[str, Any]]) -> str:
    out = []
    for m in messages:
        content = m.get("content", "")
        if not isinstance(content, str):  # multimodal content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        out.append(f"[{m.get('role', 'user')}]\n{content}")
    return "\n\n".join(out)


def render_program(program: dspy.Module, adapter: Any) -> str:
    """The prompt as the model sees it: each predictor's messages from the run's adapter, with its demos and
    `{field}` placeholders where each input goes (a multi-predictor module gets one section per predictor)."""
    preds = inner(program).named_predictors()
    sections = []
    for name, pred in preds:
        sig = pred.signature
        placeholders = {k: "{" + k + "}" for k in sig.input_fields}
        text = render_messages(adapter.format(sig, list(pred.demos), placeholders))
        sections.append(text if len(preds) == 1 else f"### predictor: {name}\n\n{text}")
    return "\n\n".join(sections)


def set_demos(program: dspy.Module, spec: TaskSpec, demos: Sequence[dict[str, Any]]) -> None:
    """Put initial demos on every predictor whose signature holds all the spec's fields."""
    if not demos:
        return
    names = set(spec.input_names) | set(spec.output_names)
    for _name, pred in inner(program).named_predictors():
        sig_names = set(pred.signature.input_fields) | set(pred.signature.output_fields)
        if names <= sig_names:
            pred.demos = [dspy.Example(**{k: v for k, v in d.items() if k in sig_names}) for d in demos]


def dump_program(program: dspy.Module, module_name: str, adapter_name: str) -> dict[str, Any]:
    """DSPy's JSON state of the inner module (what `module.save('x.json')` writes, loadable with plain
    `module.load`), plus metadata naming the module and adapter."""
    from dspy.utils.saving import get_dependency_versions

    state = inner(program).dump_state()
    state = json.loads(json.dumps(state, default=str))
    state["metadata"] = {
        "dependency_versions": get_dependency_versions(),
        "promptomatix": {"module": module_name, "adapter": adapter_name},
    }
    return state
