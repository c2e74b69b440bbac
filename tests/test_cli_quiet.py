"""The CLI cuts DSPy's log to errors once a run has loaded DSPy: DSPy sets its logger to INFO on import (after
the CLI starts, since the import is lazy), and its trial-by-trial INFO lines and warnings about its own
proposer's fields tore through the progress display of `optimize --backend dspy`."""

from __future__ import annotations

import logging

import dspy  # noqa: F401  (loaded, as a dspy-backend run loads it)

from promptomatix.cli.optimize_cmd import ProgressView


def test_a_run_event_after_dspy_is_loaded_cuts_its_log_to_errors(monkeypatch):
    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    logger = logging.getLogger("dspy")
    monkeypatch.setattr(logger, "level", logging.INFO)  # as DSPy's import leaves it
    ProgressView(False, None, None)(object())  # --json / --quiet runs too
    assert logger.level == logging.ERROR


def test_verbose_keeps_dspys_log(monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_VERBOSE", "1")
    logger = logging.getLogger("dspy")
    monkeypatch.setattr(logger, "level", logging.INFO)
    ProgressView(False, None, None)(object())
    assert logger.level == logging.INFO
