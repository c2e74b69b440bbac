"""What plugins add to the CLI, and the one-line warnings the CLI prints about plugins at startup.

Why a plugin's `register_commands` gets a fresh Typer and not the root app: handed the root app, a plugin could
replace a built-in command without a word (a group named on its own `typer.Typer(name="models")` slipped past the
name check), remove one (`optimize` gone), or edit a built-in group in place (`sessions list` replaced); and typer
lets the last of two commands of one name win. What the plugin adds to its Typer is checked by the names typer
will give it, then moved onto the root app.

All of this runs on every start, `--help` included: nothing here imports more than typer (which the CLI has
already) and the scrubber (`startup_line`).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from typing import Any

Warn = Callable[[str], None]


def add_plugin_commands(app: Any, plugin: str, hook: Callable[..., Any], warn: Warn) -> list[str]:
    """Call a plugin's `register_commands` on a fresh Typer and add what it registered to `app`, except a command
    or group named like one already there (or like one it added before). Returns the names added."""
    import typer

    staging = typer.Typer(add_completion=False)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # a plugin printing here must not break `--json`
            hook(cli=staging)
            if staging.registered_commands or staging.registered_groups:
                typer.main.get_command(staging)  # a command typer cannot build would take the whole CLI down
    except (Exception, SystemExit) as e:  # a broken plugin must not take the whole CLI (or --help) down
        warn(f"plugin {plugin} could not add its commands: {startup_line(f'{type(e).__name__}: {e}')}")
        return []
    if staging.registered_callback is not None:  # it would replace the root options (--version, ...)
        warn(f"plugin {plugin} tried to replace the root command's options; ignored")
    return _move(app, staging, plugin, warn)


def _move(app: Any, staging: Any, plugin: str, warn: Warn) -> list[str]:
    """Move the staged commands and groups onto `app`, refusing a name already taken, with a warning each."""
    from typer.models import CommandInfo

    taken = set(command_names(app))
    added: list[str] = []
    for info in [*staging.registered_commands, *staging.registered_groups]:
        names = entry_names(info)
        clash = next((n for n in names if n in taken), None)
        if clash is not None:
            if clash in added:
                warn(f"plugin {plugin} registered the command '{clash}' twice; the second one is ignored")
            else:
                warn(f"plugin {plugin} tried to replace the command '{clash}'; ignored (give it another name)")
            continue
        (app.registered_commands if isinstance(info, CommandInfo) else app.registered_groups).append(info)
        taken.update(names)
        added.extend(names)
    return added


def entry_names(info: Any) -> list[str]:
    """The names typer gives a registered command or group: a command's own or its function's (`my_cmd` is
    `my-cmd`); a group's from `add_typer(name=...)`, its callback or its `Typer(name=...)`; a group without a name
    adds its commands to its parent, under their own names."""
    from typer.main import get_command_name, solve_typer_info_defaults
    from typer.models import CommandInfo

    if isinstance(info, CommandInfo):
        if info.name:
            return [info.name]
        return [get_command_name(info.callback.__name__)] if info.callback else []
    name = solve_typer_info_defaults(info).name
    if name:
        return [name]
    return command_names(info.typer_instance) if info.typer_instance is not None else []


def command_names(app: Any) -> list[str]:
    """Every name `app` answers to, as typer resolves them."""
    return [n for info in [*app.registered_commands, *app.registered_groups] for n in entry_names(info)]


def startup_line(text: str, limit: int = 300) -> str:
    """One line of a plugin's error for a startup warning, without credentials (`run_guard.one_line`): cheap on
    `--help`, since the scrubber no longer pulls in the session models (`promptomatix.sessions` imports lazily)."""
    from promptomatix.run_guard import one_line

    return one_line(text, limit)
