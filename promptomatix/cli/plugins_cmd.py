"""`promptomatix plugins`: the loaded plugins (built-ins first) and what each registered."""

from __future__ import annotations

import typer

from promptomatix.plugins.report import KINDS, plugin_report

__all__ = ["KINDS", "plugin_report", "register"]


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
