"""Checks of command-line values that the commands share: a wrong value is a UsageError, exit 2 ("2 for a wrong
command line"), with one line naming the fix, as click's own checks and `optimize`'s settings give."""

from __future__ import annotations

import math
from typing import Any

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


def calls_value(value: int | None) -> int | None:
    """`--max-calls`: 1 or more. 0 can only fail, after the teacher's spec call, leaving a `failed` session (the
    help showed `[x>=0]`)."""
    if value is not None and value < 1:
        raise UsageError(f"--max-calls must be 1 or more, got {value}", hint="leave it out for no call limit")
    return value


def positive_value(value: float | None) -> float | None:
    """`--max-minutes`: more than 0 (0 was shown as allowed, `[x>=0.0]`, then refused by the run's settings)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise UsageError(f"--max-minutes must be a number more than 0, got {value}", hint="e.g. --max-minutes 10")
    return value


def lambda_value(value: float | None) -> float | None:
    """A length penalty λ: a number, 0 or more (NaN and infinity are not)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise UsageError(f"λ must be a number, 0 or more, got {value}", hint="e.g. --lambda 0.005")
    return value


def check_flag_conflicts(o: dict[str, Any], backend: str) -> None:
    """Flags the chosen backend does not read, and a task given twice, were dropped without a word (a user who
    forgot `--backend dspy` ran the meta search with the defaults). `o`: optimize's options by parameter name;
    `backend`: the registered name the `--backend` value resolved to."""
    task, again = o.get("raw_input"), o.get("raw_input_opt")
    if task and again and task.strip() != again.strip():
        raise UsageError("the task is given twice, as the argument and as --raw-input, with different text",
                         hint="pass it once, as the argument in quotes")  # fmt: skip
    if backend != "dspy":
        given = [flag for flag, key in (("--dspy-module", "dspy_module"), ("--dspy-optimizer", "dspy_optimizer"))
                 if o.get(key) is not None]  # fmt: skip
        if given:
            raise UsageError(f"{' and '.join(given)} apply only to --backend dspy (the backend is {backend})",
                             hint=f"add --backend dspy, or leave out {' and '.join(given)}")  # fmt: skip
        return
    given = [flag for flag, key in (("--meta-prompt", "meta_prompt"), ("--rounds", "rounds"),
                                    ("--candidates", "candidates")) if o.get(key) not in (None, [])]  # fmt: skip
    if given:
        raise UsageError(f"{', '.join(given)} apply only to the simple_meta_prompt backend, not to --backend dspy",
                         hint=f"leave out {', '.join(given)}, or the --backend dspy")  # fmt: skip


def check_followup_values(backend: str | None, search_type: str | None) -> None:
    """`refine --backend/--search-type`: a wrong value is exit 2 as on optimize (it was exit 1, a failed run)."""
    from promptomatix.config import RunConfig

    given = {k: v for k, v in (("backend", backend), ("search_type", search_type)) if v is not None}
    if not given:
        return
    try:
        RunConfig.from_kwargs(**given)
    except ConfigurationError as e:
        if type(e) is not ConfigurationError:
            raise  # a broken plugin keeps its own error (exit 1)
        raise UsageError(e.message, hint=e.hint) from None
