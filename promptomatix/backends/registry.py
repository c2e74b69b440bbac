"""Backends by name: the Backend protocol, the registry the `register_backends` hook fills, and building a run's
backend from its RunConfig. The two built-ins (simple_meta_prompt, dspy) register through the same hook as a
plugin's backend (promptomatix.plugins.builtins); DSPy is imported only when the dspy backend is built.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from promptomatix.errors import ConfigurationError, PluginError, UsageError

if TYPE_CHECKING:
    from promptomatix.backends.base import BackendResult, RunContext
    from promptomatix.backends.prompt import PromptCandidate
    from promptomatix.config import RunConfig
    from promptomatix.data.splits import BackendData


@runtime_checkable
class Backend(Protocol):
    """What the run needs of an optimizer: hyperparameters in its settings, data in `compile` (DSPy's contract).

    `compile` never mutates `initial`, sees train and valid rows only, and returns the best prompt with its scores
    and predictors attached (`BackendResult.with_predictors`). `estimate_calls` is an upper bound for dry runs.
    """

    name: str
    settings: BaseModel

    def compile(self, ctx: RunContext, initial: PromptCandidate, data: BackendData) -> BackendResult: ...

    def estimate_calls(self, n_train: int, n_valid: int) -> int: ...


@dataclass(frozen=True)
class BackendEntry:
    """A registered backend. `build(settings, cfg)` returns a Backend; `settings(cfg)` (default: the model's
    `preset(search_type, **cfg.backend_options)` when it has one, else `settings_model(**cfg.backend_options)`)
    turns the run's config into the settings; `estimate(settings, n_train, n_valid, budget)` (default: the built
    backend's `estimate_calls`) sizes a dry run. `prebuild`: built once before the run's first call, so a build that
    fails (a strategy name with a typo) costs nothing; False for a build that is costly (dspy's imports DSPy)."""

    name: str
    settings_model: type[BaseModel]
    build: Callable[[Any, RunConfig], Any]
    settings: Callable[[RunConfig], BaseModel] | None = None
    estimate: Callable[[Any, int, int, int | None], int] | None = None
    plan_lines: Callable[[Any, int, int, int | None], list[str]] | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""
    prebuild: bool = True


class BackendRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, BackendEntry] = {}
        self._aliases: dict[str, str] = {}

    def register(self, entry: BackendEntry, *, plugin: str = "") -> str:
        if not isinstance(entry, BackendEntry):
            raise PluginError(f"register_backends expects a BackendEntry, got {type(entry).__name__}")
        name = entry.name.strip()
        if name in self._entries or name in self._aliases:
            raise PluginError(f"backend {name!r} is already registered", hint="register it under another name")
        for alias in (a.strip() for a in entry.aliases):  # an alias resolves before names: it could take one over
            if alias in self._entries or alias in self._aliases or alias == name:
                owner = alias if alias in self._entries else self._aliases.get(alias, name)
                raise PluginError(f"alias {alias!r} of backend {name!r} is already taken by backend {owner!r}",
                                  hint="choose another alias")  # fmt: skip
        self._entries[name] = dataclasses.replace(entry, name=name, plugin=plugin or entry.plugin)
        self._aliases.update({a.strip(): name for a in entry.aliases})
        return name

    def names(self) -> list[str]:
        return list(self._entries)

    def all(self) -> list[BackendEntry]:
        return list(self._entries.values())

    def canonical(self, name: str) -> str | None:
        key = name.strip()
        key = self._aliases.get(key, key)
        return key if key in self._entries else None

    def get(self, name: str) -> BackendEntry:
        key = self.canonical(name)
        if key is None:
            import difflib

            close = difflib.get_close_matches(name, [*self._entries, *self._aliases], n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigurationError(f"unknown backend {name!r}", hint=f"{hint}registered: {', '.join(self._entries)}")
        return self._entries[key]


@functools.cache
def backend_registry() -> BackendRegistry:
    """Built on first use from every `register_backends` hook (built-ins first)."""
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(backend_registry.cache_clear)
    reg = BackendRegistry()
    run_register_hook("register_backends", "backends", reg.register)
    return reg


def canonical_backend(name: str) -> str:
    """The registered name for a backend name or alias; a typo is a ConfigurationError listing the names."""
    registry = backend_registry()
    return registry.canonical(name) or registry.get(name).name


def backend_settings(cfg: RunConfig) -> Any:
    """The backend's hyperparameters: the search preset, with explicit values overriding it. A key the settings
    model does not have is refused for every backend (a plugin's model ignored it, so a typo ran the defaults)."""
    entry = backend_registry().get(cfg.backend)
    _known_options(entry, cfg.backend_options)
    try:
        if entry.settings is not None:
            return entry.settings(cfg)
        preset = getattr(entry.settings_model, "preset", None)
        if callable(preset):
            return preset(cfg.search_type, **cfg.backend_options)
        return entry.settings_model(**cfg.backend_options)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UsageError(
            f"invalid setting {where!r} for the {entry.name} backend: {first.get('msg')}",
            hint=f"its settings: {', '.join(entry.settings_model.model_fields) or 'none'}",
        ) from None


def _known_options(entry: BackendEntry, options: dict[str, Any]) -> None:
    """Every `--backend-option` key names a setting (or its alias), unless the model takes extra keys itself."""
    import difflib

    model = entry.settings_model
    if model.model_config.get("extra") == "allow":
        return
    fields = model.model_fields
    known = {*fields, *(f.alias for f in fields.values() if isinstance(f.alias, str))}
    unknown = [k for k in options if k not in known]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], list(fields), n=1)
    raise UsageError(
        f"unknown setting {unknown[0]!r} for the {entry.name} backend",
        hint=(f"did you mean {close[0]!r}? " if close else "") + f"its settings: {', '.join(fields) or 'none'}",
    )


def check_backend(cfg: RunConfig) -> None:
    """Before the run's first call: the backend's settings from `--backend-option`, and the backend built once
    (then dropped; the search builds its own), so a bad option or a build that fails costs nothing (they were
    found after the spec and the synthetic data were paid for; `strategies=["rephrse"]` passed the dry run).
    Building dspy's would import DSPy for a dry run (`prebuild=False`)."""
    from promptomatix.plugins.manager import BUILTINS

    entry = backend_registry().get(cfg.backend)
    if not entry.prebuild:
        backend_settings(cfg)
        return
    try:
        make_backend(cfg)
    except ConfigurationError as e:  # a built-in's build fails only on what the user passed: a usage error (exit 2)
        if isinstance(e, (UsageError, PluginError)) or (entry.plugin and entry.plugin != BUILTINS):
            raise
        raise UsageError(e.message, hint=e.hint) from None


def compile_backend(cfg: RunConfig, backend: Any, ctx: Any, initial: Any, data: Any) -> BackendResult:
    """`backend.compile(...)`; a plugin backend's failure, or an answer that is not a BackendResult, names it."""
    from promptomatix.backends.base import BackendResult
    from promptomatix.plugins.manager import plugin_code

    entry = backend_registry().get(cfg.backend)
    with plugin_code(entry.plugin, f"backend {entry.name!r} compile"):
        result = backend.compile(ctx, initial, data)
    if not isinstance(result, BackendResult):
        raise PluginError(
            f"backend {entry.name!r} ({entry.plugin}) compile returned {type(result).__name__}, not a BackendResult",
            hint="compile(ctx, initial, data) must return a BackendResult", plugin=entry.plugin,
        )  # fmt: skip
    problem = result_problem(result)
    if problem:
        whose = f"plugin {entry.plugin}: " if entry.plugin else ""
        raise PluginError(f"{whose}backend {entry.name!r} compile returned a BackendResult {problem}",
                          hint=_contract_hint(entry.plugin), plugin=entry.plugin)  # fmt: skip
    result.backend = entry.name  # what the session records: the registered name, not what the result says
    return result


_SCORES = ("valid_raw", "valid_penalized", "initial_valid_raw", "initial_valid_penalized")
_CANDIDATE_SCORES = ("minibatch_score", "valid_raw", "valid_penalized", "confirm_score", "minibatch_raw",
                     "confirm_raw")  # fmt: skip
_EPS = 1e-9  # a raw score divided back from a penalized one may be 1.0000000000000002


def result_problem(result: BackendResult) -> str:
    """What breaks the BackendResult contract ("" when nothing does): scores that are not finite or not in
    [0, 1] (NaN was saved and written to --json), an empty prompt, predictors missing or not callable, or a
    prompt other than the one its PromptProgram predictor runs (the held-out score was of another prompt)."""
    scores = [(name, getattr(result, name)) for name in _SCORES]
    for c in result.candidates:
        scores += [(f"candidate {c.id} {n}", v) for n in _CANDIDATE_SCORES if (v := getattr(c, n)) is not None]
    for name, value in scores:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and -_EPS <= value <= 1.0 + _EPS):
            return f"with {name}={value}: scores must be finite numbers in [0, 1]"
    for name in ("prompt", "initial_prompt"):
        if not getattr(result, name).strip():
            return f"with an empty {name}"
    predictors = {"best": result._best_predict, "initial": result._initial_predict}
    for which, predict in predictors.items():
        if not callable(predict):
            return f"without a callable {which} predictor (got {type(predict).__name__})"
    for which, prompt in (("best", result.prompt), ("initial", result.initial_prompt)):
        ran = _program_prompt(predictors[which])
        if ran is not None and ran != prompt:
            field = "prompt" if which == "best" else "initial_prompt"
            return f"whose {field} {prompt[:40]!r} is not the prompt its {which} predictor runs"
    return ""


def _program_prompt(predict: Any) -> str | None:
    """The prompt a PromptProgram predictor sends (None for other predictors: nothing to compare)."""
    from promptomatix.backends.prompt import PromptProgram

    if not isinstance(predict, PromptProgram):
        return None
    return predict.candidate.render(predict.spec)


def _contract_hint(plugin: str) -> str:
    from promptomatix.plugins.manager import BUILTINS, fix_hint

    if plugin and plugin != BUILTINS:
        return ("compile must return finite scores in [0, 1], the prompt its best predictor runs, and "
                "result.with_predictors(best, initial); " + fix_hint(plugin))  # fmt: skip
    return fix_hint(BUILTINS)


def make_backend(cfg: RunConfig) -> Any:
    """The run's backend, built from the registered entry; it must satisfy the Backend protocol."""
    from promptomatix.plugins.manager import plugin_code

    entry = backend_registry().get(cfg.backend)
    with plugin_code(entry.plugin, f"backend {entry.name!r} build"):
        backend = entry.build(backend_settings(cfg), cfg)
    if not callable(getattr(backend, "compile", None)):
        raise PluginError(
            f"backend {entry.name!r} ({entry.plugin}) built {type(backend).__name__}, which has no compile()",
            hint="build must return an object with compile(ctx, initial, data) -> BackendResult",
        )
    return backend


def estimate_calls(cfg: RunConfig, n_train: int, n_valid: int, budget: int | None = None) -> int:
    """Expected LM calls of the optimizer stage, for dry runs; `budget`: calls it may make (meta: plan.py)."""
    from promptomatix.plugins.manager import plugin_code

    entry = backend_registry().get(cfg.backend)
    settings = backend_settings(cfg)
    with plugin_code(entry.plugin, f"backend {entry.name!r} call estimate"):  # int("lots") included
        if entry.estimate is not None:
            return int(entry.estimate(settings, n_train, n_valid, budget))
        return int(entry.build(settings, cfg).estimate_calls(n_train, n_valid))


def search_plan(cfg: RunConfig, n_train: int, n_valid: int, budget: int | None = None) -> list[str]:
    """The search plan sized to the data and the budget, as lines for the dry run (empty when none is known)."""
    from promptomatix.plugins.manager import plugin_code

    entry = backend_registry().get(cfg.backend)
    if entry.plan_lines is None:
        return []
    with plugin_code(entry.plugin, f"backend {entry.name!r} search plan"):
        return [str(line) for line in entry.plan_lines(backend_settings(cfg), n_train, n_valid, budget)]
