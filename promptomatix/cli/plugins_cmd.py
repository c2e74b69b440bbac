"""`promptomatix plugins`: the loaded plugins (built-ins first) and what each registered."""

from __future__ import annotations

import typer

from promptomatix.plugins.report import KINDS, plugin_report

__all__ = ["KINDS", "plugin_report", "register"]


def register(app: typer.Typer) -> None:
    @app.command("plugins", help="List the loaded plugins (built-ins first) and what each registered; exits 1 when "
                 "one failed to load or registered something invalid (for CI).")  # fmt: skip
    def plugins_cmd(json_: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        from promptomatix.cli.render import console, print_json

        report = plugin_report()
        if json_:
            print_json(report)
            _exit_if_broken(report)
            return
        from rich.markup import escape
        from rich.table import Table

        table = Table("plugin", "version", "registered")
        for p in report:
            what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
            if p["model_prefixes"]:  # which model strings it takes (`openai/` would be litellm's otherwise)
                what += f"; serves models: {', '.join(p['model_prefixes'])}"
            if p["error"]:
                what = f"[red]failed to load: {escape(p['error'])}[/]"
            table.add_row(escape(p["name"]), escape(p["version"] or ""), what if p["error"] else escape(what))
        console().print(table)
        _exit_if_broken(report)


def _exit_if_broken(report: list[dict]) -> None:
    """Exit 1 when a plugin is broken, after the listing: it exited 0, and CI could not catch a broken plugin."""
    if any(p["error"] for p in report):
        raise typer.Exit(1)
