"""The CLI cuts DSPy's log to errors once a run has loaded DSPy: DSPy sets its logger to INFO on import (after
the CLI starts, since the import is lazy), and its trial-by-trial INFO lines and warnings about its own
proposer's fields tore through the progress display of `optimize --backend dspy`."""

from __future__ import annotations

import logging

import dspy  # noqa: F401  (loaded, as a dspy-backend run loads it)

from promptomatix.cli.optimize_cmd import ProgressView


def test_a_run_event_after_dspy_is_loaded_silences_its_log(monkeypatch):
    """Cut to errors first; then DSPy's ERROR line per example a metric failed on (quoting data rows) still tore
    through `--quiet`, ahead of our one error line: now silenced too."""
    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    logger = logging.getLogger("dspy")
    monkeypatch.setattr(logger, "level", logging.INFO)  # as DSPy's import leaves it
    ProgressView(False, None, None)(object())  # --json / --quiet runs too
    assert logger.level == logging.CRITICAL


def test_verbose_keeps_dspys_log(monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_VERBOSE", "1")
    logger = logging.getLogger("dspy")
    monkeypatch.setattr(logger, "level", logging.INFO)
    ProgressView(False, None, None)(object())
    assert logger.level == logging.INFO


def test_mlflows_info_lines_are_quiet_in_the_cli(monkeypatch):
    """`--track mlflow:sqlite:///…` printed "INFO mlflow.store.db.utils: Creating initial MLflow database tables"."""
    from promptomatix.cli.app import _quiet_third_party

    monkeypatch.delenv("PROMPTOMATIX_VERBOSE", raising=False)
    for name in ("mlflow", "alembic"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    _quiet_third_party()
    assert all(logging.getLogger(n).level == logging.WARNING for n in ("mlflow", "alembic"))
