"""Where DSPy's own output goes while a compile runs: its prints, the tqdm bars it draws on stdout, the records of
its own INFO log handler and optuna's "Trial failed" records (with a traceback) all become DEBUG records of this
module's log; GEPA's bar (on stderr) is not drawn. From Python they reached the host's stderr (52 KB a GEPA run).
stderr itself is left alone: the run's own progress lines and warnings are written there from the same context.

Why not `contextlib.redirect_stdout` per compile: it swaps the process-global `sys.stdout`, so two compiles in
two threads restored each other's sinks (the host's stdout stayed a log sink for good) and every other thread's
prints vanished while one compiled. Here one proxy is installed while any compile runs (counted under a lock) and
sends a write to the log only when it comes from a compile's context (a ContextVar: our worker pools copy the
context); every other write goes to the stream it stands in for, which the last compile to finish puts back.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from promptomatix.backends.base import PRINTS_ROUTED

log = logging.getLogger(__name__)

_ROUTED: ContextVar[bool] = ContextVar("promptomatix_dspy_prints", default=False)
_lock = threading.Lock()
_state: dict[str, Any] = {"users": 0, "proxy": None}
_OPTUNA_LOGGERS = ("optuna", "optuna.study._optimize", "optuna.study.study", "optuna.trial._frozen")


_inside = threading.local()  # a log handler that writes to the proxied stream from a routed context: no loop


def _gepa_tqdm(real: Any) -> Any:
    """GEPA's engine draws its bar with the tqdm it imported (DSPy passes display_progress_bar=True, no way to say
    no): from a routed context the bar is disabled, from any other it is the real one."""

    def tqdm(*args: Any, **kwargs: Any) -> Any:
        if _ROUTED.get():
            kwargs["disable"] = True
        return real(*args, **kwargs)

    tqdm.promptomatix_real = real  # type: ignore[attr-defined]
    return tqdm


class _StdoutProxy:
    """Stands in for `target`: a write from a routed context is logged, any other is `target`'s."""

    def __init__(self, target: Any) -> None:
        self.target = target

    def write(self, text: str) -> int:
        if not _ROUTED.get() or getattr(_inside, "on", False):
            return self.target.write(text)
        _inside.on = True
        try:
            for line in text.replace("\r", "\n").split("\n"):
                if line.strip():
                    log.debug("dspy: %s", line.rstrip())
        finally:
            _inside.on = False
        return len(text)

    def flush(self) -> None:
        if not _ROUTED.get():
            self.target.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno…: the real stream's
        return getattr(self.target, name)


class _OptunaToLog(logging.Filter):
    """optuna's records from a routed context (its 25-line traceback when Ctrl-C or the budget stops a trial)
    become DEBUG records here; the run reports the stop in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _ROUTED.get():
            return True
        log.debug("optuna: %s", record.getMessage(), exc_info=record.exc_info)
        return False


class _DSPyToLog(logging.Filter):
    """On the handlers of DSPy's own logger (it adds one to stderr at import): its records from a routed context
    become DEBUG records here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _ROUTED.get():
            return True
        log.debug("dspy log: %s", record.getMessage())
        return False


def routing_wanted() -> bool:
    """Always for a library caller; the CLI routes prints itself, and shows them with PROMPTOMATIX_VERBOSE=1."""
    return not (PRINTS_ROUTED.get() and os.environ.get("PROMPTOMATIX_VERBOSE") == "1")


@contextmanager
def dspy_output_to_log() -> Iterator[None]:
    """For the compile in this context: DSPy's prints and bars and optuna's records go to the log."""
    if not routing_wanted():
        yield
        return
    _install()
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)
        _uninstall()


def _install() -> None:
    with _lock:
        if _state["users"] == 0:
            proxy = _StdoutProxy(sys.stdout)
            _state["proxy"], sys.stdout = proxy, proxy
            engine = sys.modules.get("gepa.core.engine")
            real = getattr(engine, "tqdm", None)
            if real is not None and not hasattr(real, "promptomatix_real"):
                engine.tqdm = _gepa_tqdm(real)  # type: ignore[union-attr]  # context-aware for good, as the filters
            for handler in logging.getLogger("dspy").handlers:
                if not any(isinstance(f, _DSPyToLog) for f in handler.filters):
                    handler.addFilter(_DSPyToLog())
            for name in _OPTUNA_LOGGERS:  # a logger's own filters see only records logged to it, not children's
                optuna_log = logging.getLogger(name)
                if not any(isinstance(f, _OptunaToLog) for f in optuna_log.filters):
                    optuna_log.addFilter(_OptunaToLog())
        _state["users"] += 1


def _uninstall() -> None:
    with _lock:
        _state["users"] -= 1
        if _state["users"] == 0:
            proxy = _state["proxy"]
            if sys.stdout is proxy:  # a stream the host put there meanwhile is the host's to keep
                sys.stdout = proxy.target
            _state["proxy"] = None
