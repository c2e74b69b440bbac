"""`promptomatix plugins`: the loaded plugins (built-ins first) and what each registered."""

from __future__ import annotations

from typing import Any

import typer

KINDS = ("backends", "task_types", "metrics", "models", "meta_prompts", "dspy_modules", "commands", "events")


def plugin_report() -> list[dict[str, Any]]:
    """Build every registry (so every register hook has run), then report per plugin. Imports no DSPy."""
    from promptomatix.backends.dspy_settings import dspy_module_registry
    from promptomatix.backends.meta_prompts import meta_prompt_registry
    from promptomatix.backends.registry import backend_registry
    from promptomatix.errors import PluginError
    from promptomatix.lm.providers import provider_registry
    from promptomatix.metrics.registry import plugin_metric_registry
    from promptomatix.plugins.manager import note_registration, plugin_infos, plugin_manager
    from promptomatix.task.task_types import task_type_registry

    builds = (backend_registry, task_type_registry, plugin_metric_registry, provider_registry, meta_prompt_registry,
              dspy_module_registry)  # fmt: skip
    for build in builds:
        try:
            build()
        except PluginError as e:  # the command that diagnoses plugins lists them all, the broken one marked
            broken = next((i for i in plugin_infos() if i.name == e.plugin), None)
            if broken is None:
                raise
            broken.error = broken.error or e.message
    for impl in plugin_manager().hook.on_run_event.get_hookimpls():
        note_registration(impl.plugin_name, "events", "on_run_event")
    return [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "error": info.error or None,
            "registered": {k: info.registered[k] for k in KINDS if info.registered.get(k)},
        }
        for info in plugin_infos()
    ]


def register(app: typer.Typer) -> None:
    @app.command("plugins", help="List the loaded plugins (built-ins first) and what each registered.")
    def plugins_cmd(json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        from promptomatix.cli.render import console, print_json

        report = plugin_report()
        if json_:
            print_json(report)
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table("plugin", "version", "registered")
        for p in report:
            what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
            if p["error"]:
                what = f"[red]failed to load: {escape(p['error'])}[/]"
            table.add_row(escape(p["name"]), escape(p["version"] or ""), what if p["error"] else escape(what))
        console().print(table)
