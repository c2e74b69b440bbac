"""What the plugins registered: every registry built from the hooks, reported per plugin (`promptomatix plugins`),
and checked before a run spends anything."""

from __future__ import annotations

from typing import Any

KINDS = ("backends", "task_types", "metrics", "models", "meta_prompts", "dspy_modules", "commands", "events")


def build_registries(*, strict: bool = True) -> None:
    """Build every registry the hooks feed (each once per process), so every register hook has run. Imports no DSPy.
    `strict`: a plugin that registers something invalid raises (a run); else it is marked on its plugin (the
    listing, which shows every plugin)."""
    from promptomatix.backends.dspy_settings import dspy_module_registry
    from promptomatix.backends.meta_prompts import meta_prompt_registry
    from promptomatix.backends.registry import backend_registry
    from promptomatix.errors import PluginError
    from promptomatix.lm.providers import provider_registry
    from promptomatix.metrics.registry import plugin_metric_registry
    from promptomatix.plugins.manager import plugin_infos
    from promptomatix.task.task_types import task_type_registry

    builds = (backend_registry, task_type_registry, plugin_metric_registry, provider_registry, meta_prompt_registry,
              dspy_module_registry)  # fmt: skip
    for build in builds:
        try:
            build()
        except PluginError as e:
            broken = next((i for i in plugin_infos() if i.name == e.plugin), None)
            if broken is None or strict:
                raise
            broken.error = broken.error or e.message


def plugin_report() -> list[dict[str, Any]]:
    """Every plugin, built-ins first, with what it registered; one that registered something invalid is marked."""
    from promptomatix.plugins.manager import note_registration, plugin_infos, plugin_manager

    build_registries(strict=False)
    for impl in plugin_manager().hook.on_run_event.get_hookimpls():
        note_registration(impl.plugin_name, "events", "on_run_event")
    served = model_prefixes()
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "error": info.error or None,
            "registered": {k: info.registered[k] for k in KINDS if info.registered.get(k)},
            "model_prefixes": served.get(info.name, []),
        }
        for info in plugin_infos()
    ]


def model_prefixes() -> dict[str, list[str]]:
    """The model strings each plugin serves, by plugin: its providers' prefixes, `<matcher>` for a `matches`
    function, `<fallback>` for the fallback. A plugin serving `openai/` takes those strings (and --api-key) from
    litellm: the listing shows it, where it was a provider name only (review 32)."""
    from promptomatix.errors import PluginError
    from promptomatix.lm.providers import provider_registry

    try:
        providers = provider_registry().all()
    except PluginError:  # the failing plugin is marked on its row already
        return {}
    out: dict[str, list[str]] = {}
    for p in providers:
        shown = [*p.prefixes, *(["<matcher>"] if p.matches else []), *(["<fallback>"] if p.fallback else [])]
        out.setdefault(p.plugin, []).extend(shown)
    return out
