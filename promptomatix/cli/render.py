"""Console output helpers (rich). The library never prints; only the CLI does, through here."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """Send everything written to stdout (Python-level and, where there is one, the file descriptor) to stderr.

    `--json` promises one JSON document on stdout and nothing else, but DSPy prints "Bootstrapping…" and
    native code may write to fd 1; for the run, stdout is stderr, and the JSON is printed after.
    """
    if not enabled:
        yield
        return
    real = sys.stdout
    real.flush()
    fd = saved = None
    try:
        fd = real.fileno()
        saved = os.dup(fd)
        os.dup2(sys.stderr.fileno(), fd)
    except (AttributeError, OSError, ValueError):  # a captured stream (tests) has no descriptor to move
        fd = saved = None
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = real
        if saved is not None and fd is not None:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
