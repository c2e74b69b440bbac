"""The built-ins, registered through the same hooks a plugin implements (one way in).

Registered first, so a plugin cannot take a built-in's name. Nothing heavy is imported here: the factories import
DSPy, litellm or llama.cpp when they are called.
"""

from __future__ import annotations

from typing import Any

from promptomatix.plugins.hookspecs import hookimpl

# -- backends ---------------------------------------------------------------------------------------------------


def _meta_settings(cfg: Any) -> Any:
    from promptomatix.backends.meta import MetaSettings

    explicit = {"rounds": cfg.rounds, "candidates_per_round": cfg.candidates_per_round}
    explicit["minibatch_size"] = cfg.minibatch_size
    return MetaSettings.preset(cfg.search_type, **{**explicit, **cfg.backend_options})


def _build_meta(settings: Any, cfg: Any) -> Any:
    """The meta backend with the registered meta-prompt templates and the user's `--meta-prompt` files.

    A plugin's pinned template takes a slot in every round. Its unpinned ones join the rotation interleaved
    (`with_plugin_strategies`), unless the run names its own `strategies`, which then get them at the end."""
    from promptomatix.backends.meta import MetaPromptOptimizer
    from promptomatix.backends.meta_prompts import meta_prompt_registry
    from promptomatix.backends.strategies import StrategyRegistry, TemplateStrategy
    from promptomatix.errors import ConfigurationError, PluginError

    registry = StrategyRegistry.default()
    rotating: list[str] = []
    for template in meta_prompt_registry().all():
        if template.plugin == BUILTINS_NAME:
            continue  # StrategyRegistry.default() holds them already
        try:
            registry.register(TemplateStrategy(template.name, template.text))
        except ConfigurationError as e:
            raise PluginError(f"plugin {template.plugin}: {e.message}", hint=e.hint) from e
        if template.pinned:
            settings.pinned_strategies = [*settings.pinned_strategies, template.name]
        else:
            rotating.append(template.name)
    if "strategies" in cfg.backend_options:  # the user's own rotation keeps its order
        settings.strategies = [*settings.strategies, *rotating]
    else:
        settings.strategies = with_plugin_strategies(settings.strategies, rotating)
    for path in cfg.meta_prompts:
        name = registry.register_template_file(path)
        settings.pinned_strategies = [*settings.pinned_strategies, name]  # the user's template runs every round
    return MetaPromptOptimizer(settings, registry)


def with_plugin_strategies(builtin: list[str], plugins: list[str]) -> list[str]:
    """The rotation with plugins' unpinned templates interleaved: one after each built-in strategy, from the second
    slot of round 1 on (`a, p1, b, p2, c, ...`). Appended after the 12 built-ins, they were never reached by a quick
    run (3 rounds of 4 slots) nor by a moderate one that patience stopped. Without plugin templates the rotation is
    the built-ins' own, unchanged."""
    out: list[str] = []
    for i, name in enumerate(builtin):
        out.append(name)
        if i < len(plugins):
            out.append(plugins[i])
    return [*out, *plugins[len(builtin) :]]


def _dspy_settings(cfg: Any) -> Any:
    from promptomatix.backends.dspy_settings import DSPySettings

    explicit = {"module": cfg.dspy_module, "optimizer": cfg.dspy_optimizer, "num_threads": cfg.num_threads}
    return DSPySettings.preset(cfg.search_type, **{**explicit, **cfg.backend_options})


def _build_dspy(settings: Any, cfg: Any) -> Any:
    from promptomatix.backends.dspy_backend import DSPyOptimizer

    return DSPyOptimizer(settings)


def _estimate(settings: Any, n_train: int, n_valid: int, budget: int | None) -> int:
    from promptomatix.backends.plan import estimate_optimizer_calls

    return estimate_optimizer_calls(settings, n_train, n_valid, budget)


def _plan_lines(settings: Any, n_train: int, n_valid: int, budget: int | None) -> list[str]:
    from promptomatix.backends.plan import search_plan_lines

    return search_plan_lines(settings, n_train, n_valid, budget)


@hookimpl
def register_backends(register: Any) -> None:
    from promptomatix.backends.registry import BackendEntry

    common = {"estimate": _estimate, "plan_lines": _plan_lines}
    register(
        BackendEntry(
            name="simple_meta_prompt",
            settings_model=_lazy_model("promptomatix.backends.meta", "MetaSettings"),
            settings=_meta_settings,
            build=_build_meta,
            aliases=("meta", "simple-meta-prompt"),
            description="instructions x demos x format search; a teacher rewrites from scores and failures",
            **common,
        )
    )
    register(
        BackendEntry(
            name="dspy",
            settings_model=_lazy_model("promptomatix.backends.dspy_settings", "DSPySettings"),
            settings=_dspy_settings,
            build=_build_dspy,
            prebuild=False,  # building it imports DSPy: a dry run checks its settings only
            description="DSPy optimizers (MIPROv2, GEPA, BootstrapFewShot, LabeledFewShot) over a DSPy module",
            **common,
        )
    )


def _lazy_model(module: str, name: str) -> Any:
    """The settings class; meta.py is cheap to import, and dspy_settings.py is free of DSPy by design."""
    import importlib

    return getattr(importlib.import_module(module), name)


# -- task types -------------------------------------------------------------------------------------------------


@hookimpl
def register_task_types(register: Any) -> None:
    from promptomatix.plugins.builtin_task_types import BUILTIN_TASK_TYPES

    for task_type in BUILTIN_TASK_TYPES:
        register(task_type)


# -- model clients ----------------------------------------------------------------------------------------------


@hookimpl
def register_models(register: Any) -> None:
    from promptomatix.lm.catalog import KNOWN_MODELS
    from promptomatix.lm.factory import litellm_client, local_client
    from promptomatix.lm.providers import ModelProvider

    register(
        ModelProvider(
            name="local",
            factory=local_client,
            prefixes=("local/", "local:"),
            models=tuple(f"local/{n}" for n in KNOWN_MODELS),
            description="GGUF models in-process via xllamacpp (catalogue names, or local:/path/to/file.gguf)",
        )
    )
    register(
        ModelProvider(
            name="litellm",
            factory=litellm_client,
            fallback=True,
            description="any litellm/DSPy model string: openai/..., anthropic/..., ollama_chat/...",
        )
    )


# -- meta-prompts and DSPy modules ------------------------------------------------------------------------------

BUILTINS_NAME = "promptomatix.builtins"
META_TEMPLATES = ("rewrite_from_failures", "add_format", "rephrase", "compress")


@hookimpl
def register_meta_prompts(register: Any) -> None:
    from importlib import resources

    for name in META_TEMPLATES:
        text = resources.files("promptomatix.backends").joinpath(f"templates/{name}.txt").read_text(encoding="utf-8")
        register(name, text)


@hookimpl
def register_dspy_modules(register: Any) -> None:
    from promptomatix.backends import dspy_factories as f

    register("predict", f.predict)
    register("cot", f.chain_of_thought)
    register("pot", f.program_of_thought)
    register("react", f.react)


# -- CLI commands -----------------------------------------------------------------------------------------------


@hookimpl
def register_commands(cli: Any) -> None:
    """The built-in command groups. An import error here is a bug and fails loudly (never a dropped command)."""
    from promptomatix.cli import batch_cmd, models_cmd, optimize_cmd, plugins_cmd, sessions_cmd, ui_cmd

    cli.add_typer(models_cmd.app, name="models")
    for module in (optimize_cmd, sessions_cmd, ui_cmd, batch_cmd, plugins_cmd):
        module.register(cli)
