"""Task types: an open set of registered `TaskTypeDef`s. Metrics, spec inference and the CLI key on their names.

A task type is a plain string in a TaskSpec (`spec.task_type == TaskType.CLASSIFICATION`); its definition — aliases,
default fields, keywords for guessing it from a description, how it is scored — comes from `task_type(name)`.
The built-in types are registered by promptomatix.plugins.builtins through the same `register_task_types` hook a
plugin uses, so a plugin's type works end to end (`--task-type mytype`, its metric used for scoring).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from promptomatix.errors import ConfigurationError, PluginError

#: How a type is scored when it brings no metric of its own: one of the MetricsManager's built-in scorers.
Scoring = Literal[
    "classification", "multi_label", "qa", "reasoning", "summarization", "translation", "extraction", "judge"
]


class TaskType:
    """Names of the built-in task types (plain strings: a plugin's type is just another name)."""

    CLASSIFICATION = "classification"
    MULTI_LABEL_CLASSIFICATION = "multi_label_classification"
    QA = "qa"
    REASONING = "reasoning"
    SUMMARIZATION = "summarization"
    TRANSLATION = "translation"
    GENERATION = "generation"
    INFORMATION_EXTRACTION = "information_extraction"
    PARAPHRASING = "paraphrasing"
    CONVERSATION = "conversation"
    NEGOTIATION = "negotiation"
    CODE_GENERATION = "code_generation"
    CODE_EXPLANATION = "code_explanation"
    CODE_COMPLETION = "code_completion"
    CODE_DEBUGGING = "code_debugging"
    PLANNING = "planning"
    TOOL_USE = "tool_use"
    DECISION_MAKING = "decision_making"
    PROCESS_AUTOMATION = "process_automation"
    RECOMMENDATION = "recommendation"
    DATA_ANALYSIS = "data_analysis"


@dataclass(frozen=True)
class TaskTypeDef:
    """A task type. `metric`/`final_metric` are `fn(example, prediction) -> score in [0, 1]` (or a bool, or
    (score, feedback)); without them `scoring` names the built-in scorer. `keywords` are matched (lower-case)
    against a description when no type is given; `labels` says whether its output is a closed label set."""

    name: str
    aliases: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ("request",)
    output: str = "response"
    scoring: Scoring = "judge"
    metric: Callable[..., Any] | None = None
    final_metric: Callable[..., Any] | None = None
    keywords: tuple[str, ...] = ()
    keyword_rank: int = 0  # guessing tries lower ranks first (stable); built-ins use 1.., so a plugin's goes first
    labels: Literal["single", "multi"] | None = None
    description: str = ""
    plugin: str = ""


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


_SCORINGS: tuple[str, ...] = get_args(Scoring)
_LABELS = (None, "single", "multi")


def checked_definition(d: TaskTypeDef) -> TaskTypeDef:
    """`d` with its tuples as tuples, or a PluginError naming the bad field: a definition is checked when it is
    registered, so a metric that is not callable or an empty output name fails before the run spends anything
    (they failed after the whole search, losing it, or as a pydantic dump)."""
    where = f"task type {d.name!r}"
    if not isinstance(d.name, str) or not _key(d.name):
        raise PluginError(f"{where}: name must be a non-empty string", hint="name the task type, e.g. 'tone'")
    parts = {f: _names(d, f, where) for f in ("aliases", "inputs", "keywords")}
    if not parts["inputs"]:
        raise PluginError(f"{where}: inputs is empty", hint="name at least one input field, e.g. ('text',)")
    if not isinstance(d.output, str) or not d.output.strip():
        raise PluginError(f"{where}: output must be a non-empty field name, got {d.output!r}",
                          hint="name the output field, e.g. output='label'")  # fmt: skip
    if d.scoring not in _SCORINGS:
        raise PluginError(f"{where}: scoring {d.scoring!r} is not a built-in scorer",
                          hint=f"use one of: {', '.join(_SCORINGS)}, or pass metric=fn")  # fmt: skip
    if d.labels not in _LABELS:
        raise PluginError(f"{where}: labels must be 'single', 'multi' or None, got {d.labels!r}")
    if isinstance(d.keyword_rank, bool) or not isinstance(d.keyword_rank, int):
        raise PluginError(f"{where}: keyword_rank must be an int, got {type(d.keyword_rank).__name__}")
    if not isinstance(d.description, str):
        raise PluginError(f"{where}: description must be a string, got {type(d.description).__name__}")
    for field in ("metric", "final_metric"):
        _check_metric(getattr(d, field), f"{where}: {field}")
    return dataclasses.replace(d, output=d.output.strip(), **parts)


def _names(d: TaskTypeDef, field: str, where: str) -> tuple[str, ...]:
    """A tuple (or list) of non-empty strings; a bare string is refused (it would be read letter by letter)."""
    value = getattr(d, field)
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise PluginError(f"{where}: {field} must be a tuple of strings, got {type(value).__name__} {value!r}",
                          hint=f"e.g. {field}=({value!r},)" if isinstance(value, str) else None)  # fmt: skip
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise PluginError(f"{where}: {field} holds {bad[0]!r}, not a non-empty string")
    return tuple(v.strip() for v in value)


def _check_metric(fn: Any, where: str) -> None:
    """None, or a callable that can be called as fn(example, prediction)."""
    from promptomatix.metrics.signature import check_metric_callable

    if fn is not None:
        check_metric_callable(fn, where, PluginError)


class TaskTypeRegistry:
    """Name and aliases → TaskTypeDef, in registration order (keyword guessing tries types in that order)."""

    def __init__(self) -> None:
        self._types: dict[str, TaskTypeDef] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.Lock()

    def register(self, task_type: TaskTypeDef, *, plugin: str = "") -> str:
        if not isinstance(task_type, TaskTypeDef):
            raise PluginError(f"register_task_types expects a TaskTypeDef, got {type(task_type).__name__}")
        task_type = checked_definition(task_type)
        name = _key(task_type.name)
        with self._lock:
            if name in self._types or name in self._aliases:
                owner = self._types.get(name) or self._types[self._aliases[name]]
                raise PluginError(
                    f"task type {name!r} is already registered by {owner.plugin or 'user code'}",
                    hint="register it under another name",
                )
            taken = [a for a in task_type.aliases if _key(a) in self._types]  # aliases resolve first: a hijack
            if taken:
                owner = self._types[_key(taken[0])]
                raise PluginError(
                    f"alias {taken[0]!r} of task type {name!r} is the task type registered by "
                    f"{owner.plugin or 'user code'}",
                    hint="drop that alias",
                )
            self._check_aliases(task_type, name)
            self._types[name] = dataclasses.replace(task_type, name=name, plugin=plugin or task_type.plugin)
            for alias in task_type.aliases:
                self._aliases.setdefault(_key(alias), name)
        return name

    def _check_aliases(self, task_type: TaskTypeDef, name: str) -> None:
        """An alias another type already has is refused: the first owner kept it, so `--task-type math` ran the
        built-in reasoning type while the plugin's docs promised its own (review 32)."""
        for alias in task_type.aliases:
            holder = self._aliases.get(_key(alias), name)
            if holder != name:
                raise PluginError(
                    f"alias {alias!r} of task type {name!r} is already an alias of task type {holder!r} "
                    f"({self._types[holder].plugin or 'user code'})",
                    hint="drop that alias",
                )

    def normalize(self, name: str) -> str:
        """Canonical name of a type or alias; unknown names are only normalized (custom metrics may name them)."""
        key = _key(name)
        return self._aliases.get(key, self._aliases.get(name.strip().lower(), key))

    def get(self, name: str) -> TaskTypeDef | None:
        return self._types.get(self.normalize(name))

    def names(self) -> list[str]:
        return list(self._types)

    def all(self) -> list[TaskTypeDef]:
        return list(self._types.values())


@functools.cache
def task_type_registry() -> TaskTypeRegistry:
    """Built on first use from every `register_task_types` hook (built-ins first)."""
    from promptomatix.plugins.manager import on_reset, run_register_hook

    on_reset(task_type_registry.cache_clear)
    reg = TaskTypeRegistry()
    run_register_hook("register_task_types", "task_types", reg.register)
    return reg


def normalize_task_type_name(name: str) -> str:
    """Lower-case, underscore and resolve aliases; does not validate (custom metrics may name new types)."""
    return task_type_registry().normalize(name)


def known_task_types() -> list[str]:
    return task_type_registry().names()


def get_task_type(name: str) -> TaskTypeDef:
    """The registered type, or a ConfigurationError listing the known ones."""
    found = task_type_registry().get(name)
    if found is None:
        raise ConfigurationError(
            f"unknown task type {name!r}",
            hint=f"use one of: {', '.join(known_task_types())}; or register one from a plugin (register_task_types)",
        )
    return found


def is_open_ended(name: str) -> bool:
    """Scored by reference-free judgement (plus reference overlap when a reference exists)."""
    found = task_type_registry().get(name)
    return found is not None and found.metric is None and found.scoring == "judge"


def label_kind(name: str) -> Literal["single", "multi"] | None:
    """Whether the type's output is one label of a closed set, several, or free (None; also for unknown types)."""
    found = task_type_registry().get(name)
    return found.labels if found else None
