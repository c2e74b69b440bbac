"""Building and loading the DSPy program of a run: module factories, signature, saved state, adapter."""

from __future__ import annotations

import json
import textwrap
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import dspy

from promptomatix.backends.dspy_modules import (
    ModuleFactory,
    SpecProgram,
    build_signature,
    inner,
    normalize_module_name,
    registered_modules,
)
from promptomatix.backends.dspy_settings import DSPySettings, dspy_module_registry
from promptomatix.errors import ConfigurationError


def _deno_available() -> bool:
    """ProgramOfThought runs code in DSPy's Deno/Pyodide sandbox; check Deno 2.x is installed."""
    try:
        from dspy.primitives.python_interpreter import _find_deno_executable, _get_deno_version
    except ImportError:  # pragma: no cover - layout change in DSPy
        return False
    version = _get_deno_version(_find_deno_executable())
    return version is not None and version[0] == 2


def _module_factory(
    name: str, modules: Mapping[str, ModuleFactory] | None, tools: Sequence[Any]
) -> tuple[str, ModuleFactory]:
    key = normalize_module_name(name)
    own = {normalize_module_name(k): f for k, f in (modules or {}).items()}
    if key in own:
        return key, own[key]
    user = registered_modules()
    if key in user:
        return key, user[key]
    registered = dspy_module_registry()  # the built-ins and every plugin's, by name
    if key in registered:
        factory = registered[key]
        if getattr(factory, "takes_tools", False):
            return key, lambda sig: factory(sig, tools=list(tools))
        return key, factory
    known = sorted({*registered, *user, *own})
    raise ConfigurationError(
        f"unknown DSPy module '{name}'; known: {', '.join(known)}",
        hint="or register one from a plugin (register_dspy_modules) or with register_module(name, factory)",
    )


def build_program(
    spec: Any,
    settings: DSPySettings,
    instructions: str | None = None,
    *,
    modules: Mapping[str, ModuleFactory] | None = None,
    tools: Sequence[Any] = (),
) -> SpecProgram:
    key, factory = _module_factory(settings.module, modules, tools)
    signature = build_signature(spec, instructions)
    try:
        module = factory(signature)
    except ConfigurationError:
        raise
    except Exception as e:
        raise ConfigurationError(f"could not build the DSPy module '{settings.module}': {e}") from e
    if not isinstance(module, dspy.Module) or not module.named_predictors():
        raise ConfigurationError(
            f"the DSPy module '{settings.module}' has no predictors to optimize",
            hint="a module factory must return a dspy.Module holding at least one dspy.Predict",
        )
    return SpecProgram(module, key)


def load_program(
    spec: Any,
    settings: DSPySettings,
    program_json: Mapping[str, Any],
    *,
    modules: Mapping[str, ModuleFactory] | None = None,
    tools: Sequence[Any] = (),
) -> SpecProgram:
    """Rebuild the module from the spec and load a saved state (BackendResult.program_json or a file written by
    DSPy's `module.save`). The instructions and demos come from the state."""
    program = build_program(spec, settings, modules=modules, tools=tools)
    state = {k: v for k, v in program_json.items() if k != "metadata"}
    try:
        inner(program).load_state(state)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigurationError(
            f"the saved DSPy program does not fit module '{settings.module}' for this task: {e}",
            hint="load it with the module and task spec it was optimized with",
        ) from e
    return program


class CachingJSONAdapter(dspy.JSONAdapter):
    """DSPy's JSON adapter with what depends on the signature alone built once per signature, per run.

    Stock JSONAdapter builds a pydantic model and its JSON schema for the response format, and the system message,
    on every call; for a run's thousands of calls over a few signatures that was a sixth of the engine's CPU
    (benchmarks/RESULTS.md §1). The messages and the schema sent are the same as stock (tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._formats: dict[Any, Any] = {}
        self._systems: dict[Any, str] = {}
        self._demos: OrderedDict[Any, tuple[list[Any], list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def _prepare_response_format(self, lm: Any, lm_kwargs: dict[str, Any], signature: Any) -> None:
        key = (
            _outputs_shape(signature),  # MIPROv2 makes a signature per trial; the schema reads only the outputs
            "response_format" in lm.supported_params,
            bool(getattr(lm, "supports_response_schema", False)),
        )
        if key not in self._formats:
            probe: dict[str, Any] = {}
            super()._prepare_response_format(lm, probe, signature)
            self._formats[key] = probe.get("response_format")
        if self._formats[key] is not None:
            lm_kwargs["response_format"] = self._formats[key]

    def format_field_with_value(self, fields_with_values: dict[Any, Any], role: str = "user") -> str:
        """Plain-string values (nearly every value a task row has) formatted as stock formats them, without the
        pydantic TypeAdapter stock builds per value to serialize a string to itself; anything else goes to
        stock."""
        if not all(type(v) is str for v in fields_with_values.values()):
            return super().format_field_with_value(fields_with_values, role)
        if role == "user":
            return "\n\n".join(f"[[ ## {f.name} ## ]]\n{v}" for f, v in fields_with_values.items()).strip()
        return json.dumps({f.name: v for f, v in fields_with_values.items()}, indent=2, ensure_ascii=False)

    def format_system_message(self, signature: Any) -> str:
        text = self._systems.get(signature)
        if text is None:
            text = self._systems[signature] = super().format_system_message(signature)
        return text

    def format_demos(self, signature: Any, demos: list[Any]) -> list[dict[str, Any]]:
        """Stock's messages for the demos, formatted once per demo set and field shape (every row of a trial shows
        the same demos; dumping them was a quarter of a call's CPU). A demo is never changed once made (DSPy
        copies, never edits, them), so the set is known by its objects, kept alive with the entry."""
        key = (_fields_shape(signature), tuple(id(d) for d in demos))
        with self._lock:
            hit = self._demos.get(key)
            if hit is not None:
                self._demos.move_to_end(key)
        if hit is None:
            hit = (list(demos), super().format_demos(signature, demos))
            with self._lock:
                self._demos[key] = hit
                while len(self._demos) > _DEMO_SETS_KEPT:
                    self._demos.popitem(last=False)
        return [dict(m) for m in hit[1]]


_DEMO_SETS_KEPT = 256


def _fields_shape(signature: Any) -> tuple[Any, ...]:
    """What a signature's formatting of values depends on: its fields' names, kinds and types (not instructions)."""
    ins = tuple((n, f.annotation) for n, f in signature.input_fields.items())
    return ins, _outputs_shape(signature)


def _outputs_shape(signature: Any) -> tuple[Any, ...]:
    return tuple((n, f.annotation, repr(getattr(f, "default", None))) for n, f in signature.output_fields.items())


class LeanJSONAdapter(CachingJSONAdapter):
    """DSPy's JSON adapter cut down for small local models, for the task's own signature only.

    The system message is the instructions alone and inputs are `name: value` lines, as in the meta backend; the
    answer is still JSON under the output schema (which a local model's grammar enforces). DSPy's full format
    (field descriptions, structure templates) makes 135M-class models answer one label for every input. Other
    signatures (MIPROv2's proposer, GEPA's reflection on the teacher) keep DSPy's full JSON format.
    """

    def __init__(self, input_fields: Sequence[str], output_fields: Sequence[str]) -> None:
        super().__init__()
        self._inputs = set(input_fields)
        self._outputs = set(output_fields)

    def _ours(self, signature: Any) -> bool:
        return set(signature.input_fields) == self._inputs and self._outputs <= set(signature.output_fields)

    def format_system_message(self, signature: Any) -> str:
        if not self._ours(signature):
            return super().format_system_message(signature)
        return textwrap.dedent(signature.instructions).strip()

    def format_user_message_content(
        self, signature: Any, inputs: dict[str, Any], prefix: str = "", suffix: str = "", main_request: bool = False
    ) -> str:
        if not self._ours(signature):
            return super().format_user_message_content(signature, inputs, prefix, suffix, main_request)
        from dspy.adapters.utils import format_field_value

        lines = [
            f"{name}: {format_field_value(field_info=info, value=inputs[name])}"
            for name, info in signature.input_fields.items()
            if name in inputs
        ]
        return "\n".join(part for part in (prefix, *lines, suffix) if part).strip()


def adapter_name_for(settings: DSPySettings, task_model: str) -> str:
    """'auto' is the lean JSON adapter for local models and DSPy's JSON adapter for the rest."""
    if settings.adapter != "auto":
        return settings.adapter
    return "lean" if task_model.startswith("local") else "json"


def adapter_for(settings: DSPySettings, spec: Any = None, task_model: str = "") -> Any:
    """JSON (with a JSON schema, which local models turn into a grammar) unless 'chat' is asked for: small
    models rarely write ChatAdapter's [[ ## field ## ]] markers."""
    name = adapter_name_for(settings, task_model)
    if name == "chat":
        return dspy.ChatAdapter()
    if name == "lean" and spec is not None:
        return LeanJSONAdapter(spec.input_names, spec.output_names)
    return CachingJSONAdapter()
