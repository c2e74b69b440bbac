"""Console output helpers (rich). The library never prints; only the CLI does, through here."""

from __future__ import annotations

import json
import sys
from typing import Any


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    from rich.markup import escape  # a message quoting user input ("a[b]x") must print as given

    _console(stderr=True).print(f"[bold red]Error:[/] {escape(message)}", markup=True, highlight=False)


def info(message: str) -> None:
    _console(stderr=True).print(message, markup=False)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def console() -> Any:
    return _console()


def err_console() -> Any:
    """Progress and notes go to stderr, so stdout carries only the result (pipe-friendly)."""
    return _console(stderr=True)
