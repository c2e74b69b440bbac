"""Checks of command-line values that the commands share: a wrong value is a UsageError, exit 2 ("2 for a wrong
command line"), with one line naming the fix, as click's own checks and `optimize`'s settings give."""

from __future__ import annotations

import math

from promptomatix.errors import ConfigurationError, UsageError


def track_value(value: str | None) -> str | None:
    """`--track`'s callback: an unknown tracker is a wrong command line (it was exit 1, as a failed run). Whether
    mlflow imports and its store answers is checked when the run starts (exit 1: the command line was fine)."""
    if value is None:
        return value
    from promptomatix.tracking import parse_track

    try:
        parse_track(value)
    except ConfigurationError as e:
        raise UsageError(e.message, hint=e.hint) from None
    return value


def lambda_value(value: float | None) -> float | None:
    """A length penalty λ: a number, 0 or more (NaN and infinity are not)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UsageError(f"λ must be a number, 0 or more, got {value}", hint="e.g. --lambda 0.005")
    return value
