"""The hook specifications a plugin can implement (pluggy, project name "promptomatix").

Every `register_*` hook receives a `register` callable; what it takes is documented on the hook. Built-ins
(promptomatix.plugins.builtins) implement the same hooks, so a plugin adds to the same registries they fill.
Hooks run once per process, on first use of the registry they feed; they must stay cheap (import DSPy or
litellm inside the factories they register, never at module level).
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "promptomatix"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_backends(register: Any) -> None:
    """Optimization backends: `register(BackendEntry(name=..., settings_model=..., build=...))`
    (promptomatix.backends.registry.BackendEntry)."""


@hookspec
def register_task_types(register: Any) -> None:
    """Task types: `register(TaskTypeDef(name=..., aliases=..., inputs=..., output=..., metric=...))`
    (promptomatix.task.task_types.TaskTypeDef)."""


@hookspec
def register_metrics(register: Any) -> None:
    """Metrics for a task type: `register(task_type, fn)` or `register(task_type, fn, final=final_fn)`;
    `fn(example, prediction)` returns a number in [0, 1], a bool or (score, feedback). Only for task types this
    plugin registers: replacing a built-in's or another plugin's scoring is a clash (a user replaces a metric for
    their own runs with `--metric` or `register_metric`)."""


@hookspec
def register_models(register: Any) -> None:
    """Model clients: `register(ModelProvider(name=..., prefixes=("myprovider/",), factory=...))`
    (promptomatix.lm.providers.ModelProvider); the factory returns a ModelClient (promptomatix.lm.types)."""


@hookspec
def register_meta_prompts(register: Any) -> None:
    """Meta-prompt templates for the meta backend: `register(name, template_text, pinned=False)`.

    Placeholders: $task $outputs $current_prompt $score $history $failures $feedback $tip. A pinned template
    gets a slot in every round (as `--meta-prompt FILE` does). Others join the strategies the search rotates
    through, interleaved with the built-ins from the second slot of round 1 on (one after each built-in), so a
    default quick run uses them; a run that sets its own `strategies` option gets them after its list.
    """


@hookspec
def register_dspy_modules(register: Any) -> None:
    """DSPy modules for `--dspy-module NAME`: `register(name, factory)`, `factory(signature) -> dspy.Module`."""


@hookspec
def register_commands(cli: Any) -> None:
    """CLI commands: add commands (`@cli.command()`) or groups (`cli.add_typer`) to `cli`, a typer.Typer.

    For a plugin, `cli` is a fresh Typer whose commands and groups are then added to the root app: one named like
    a command already there (`optimize`, or a group named on its own Typer) is refused with a warning, as is a
    second one of the same name, and the built-in commands cannot be removed or edited through it. A plugin's
    command that raises is reported in one line naming the plugin.
    """


@hookspec
def on_run_event(event: Any) -> None:
    """A run event (`promptomatix.plugins.RunEvent`): for logging, webhooks and tracking.

    Called synchronously in the run's process; an exception (or a `sys.exit()`) in a subscriber is logged and
    never stops the run.
    """
