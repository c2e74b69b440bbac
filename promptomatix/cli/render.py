"""Console output helpers (rich). The library never prints; only the CLI does, through here."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def verbose() -> bool:
    """PROMPTOMATIX_VERBOSE=1: third-party logs and prints are shown as they come, not quieted by the CLI."""
    return os.environ.get("PROMPTOMATIX_VERBOSE") == "1"


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with control characters other than newline and tab shown as `\\x1b` etc.

    Prompts, candidates and feedback are written by models (and users); an escape sequence printed raw can set the
    terminal's title or rewrite lines above (`ESC]0;…BEL`, `ESC[1A`). rich escapes its markup, not these. JSON
    output and `sessions export` stay exact: they are data, not text for a terminal."""
    text = text.replace("\r\n", "\n")  # a Windows line end is a line end, not a control character to show
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def safe(text: str) -> str:
    """`text` for rich with markup on: control characters made visible, then its markup escaped."""
    from rich.markup import escape

    return escape(visible(text))


def error_line(message: str) -> None:
    """One red line on stderr; credentials an exception quoted (a URL's password) are redacted first."""
    from promptomatix.sessions.secrets import scrub_text

    # a message quoting user input ("a[b]x", an escape code) must print as given, and visibly
    _console(stderr=True).print(f"[bold red]Error:[/] {safe(scrub_text(message))}", markup=True, highlight=False)


def info(message: str) -> None:
    _console(stderr=True).print(visible(message), markup=False)


def is_utf8(stream: Any) -> bool:
    """Whether `stream` can encode any text: a cp1252 or ASCII stdout (Windows redirected, a legacy log capturer)
    cannot, and "→" or a user's Arabic crashed the report after the run had succeeded."""
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding in ("utf8", "utf8sig", "utf16", "utf32")


def print_json(obj: Any) -> None:
    """One JSON document on stdout. On a stdout that is not UTF-8 it is ASCII (`\\uXXXX` escapes): still the exact
    document for any JSON reader, where a character the codec lacks used to leave stdout empty and exit 1."""
    ascii_only = not is_utf8(sys.stdout)
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=ascii_only, default=str) + "\n")
    sys.stdout.flush()


def print_panel(c: Any, text: str, title: str) -> None:
    """`text` (rich markup, escaped by the caller) in a box, wrapped at the width and never cropped.

    The console soft-wraps (a long `next: promptomatix …` line stays one line to copy), and under soft wrap rich
    crops a panel's lines at its edge: a prompt lost the end of every long line. A title too wide for the box (a
    narrow terminal) is a line of its own above it, so the session id in it is never cut either."""
    from rich.panel import Panel
    from rich.text import Text

    if not is_utf8(c.file):  # measure what the stream will write ("\\u2192"), or the box's right edge is off
        text, title = (x.encode(c.encoding, "backslashreplace").decode(c.encoding) for x in (text, title))
    if Text.from_markup(title).cell_len + 6 > c.width:
        c.print(title, soft_wrap=True)
        c.print(Panel(text), soft_wrap=False)
        return
    c.print(Panel(text, title=title), soft_wrap=False)


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


class _LinesToLog(io.TextIOBase):
    """A stdout stand-in that turns whole lines into DEBUG records of `promptomatix.cli.printed`."""

    def __init__(self) -> None:
        self._pending = ""
        self._log = logging.getLogger("promptomatix.cli.printed")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                self._log.debug(line)
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            self._log.debug(self._pending)
        self._pending = ""


@contextmanager
def run_stdout(json_: bool) -> Iterator[None]:
    """Where Python-level stdout goes while a run works.

    Third-party code prints progress of its own (DSPy: "Bootstrapping set 2/6", "Bootstrapped 3 full traces…"),
    which tore through the live progress line and told the user nothing to act on. With `--json` it goes to
    stderr as before; otherwise it becomes DEBUG log records, and PROMPTOMATIX_VERBOSE=1 shows it as printed.
    """
    from promptomatix.backends.base import PRINTS_ROUTED

    token = PRINTS_ROUTED.set(True)  # the backends leave stdout to us
    try:
        if json_:
            with stdout_to_stderr():
                yield
            return
        if verbose():
            yield
            return
        real, sink = sys.stdout, _LinesToLog()
        real.flush()
        sys.stdout = sink
        try:
            yield
        finally:
            sink.flush()
            sys.stdout = real
    finally:
        PRINTS_ROUTED.reset(token)
