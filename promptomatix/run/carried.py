"""A resumed run continues the budget of the run it resumes: what that run spent before it stopped (Ctrl-C, a
crash, a failure) counts against its limits, so `--max-usd 5` bounds the run as a whole however often it is
resumed. Replayed calls are free, so only new calls are counted on top. A limit given to `resume` is the whole
run's limit too: pass a larger one to give the run more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from promptomatix.errors import BudgetExceeded
from promptomatix.lm.boundary import LIMIT_FLAGS

if TYPE_CHECKING:
    from promptomatix.lm.usage import Budget
    from promptomatix.sessions.models import Usage

_FLAGS = {f"max_{limit}": flag for limit, flag in LIMIT_FLAGS.items()}  # Budget's names: max_calls, max_tokens, ...


#: the run settings that are its limits (RunConfig's names)
LIMITS = ("max_calls", "max_total_tokens", "max_usd", "max_minutes")


def run_limits(cfg: Any) -> dict[str, float | None]:
    """The limits a run was given, as the session keeps them for a resume."""
    return {name: getattr(cfg, name) for name in LIMITS}


def with_run_limits(cfg: Any, limits: dict[str, float | None] | None, given: dict[str, Any]) -> Any:
    """`cfg` with the limits of the run being resumed (a refine's own, or an earlier resume's) where the resume
    names none: the session's settings hold the first optimize's only."""
    if not limits:
        return cfg
    return cfg.model_copy(update={k: v for k, v in limits.items() if k in LIMITS and given.get(k) is None})


def remember_limits(session: Any, cfg: Any) -> None:
    """Keep a resume's limits in the session before it runs: one stopped before its search starts (which writes
    them too) must not leave the next resume with the older ones."""
    session.progress = {**(session.progress or {}), "limits": run_limits(cfg)}


def _spent_by_limit(before: Usage) -> dict[str, float]:
    """What counts against each limit. A call that got no answer (a provider down, a timeout) paid nothing: an
    outage does not use up the calls of the run that resumes after it."""
    return {"max_calls": before.calls - before.failed_calls,
            "max_tokens": before.prompt_tokens + before.completion_tokens,
            "max_usd": before.cost_usd or 0.0, "max_seconds": before.seconds}  # fmt: skip


def budget_left(budget: Budget, before: Usage | None) -> Budget:
    """What is left of `budget` after `before`; unlimited limits stay unlimited."""
    if before is None:
        return budget
    spent = _spent_by_limit(before)
    left: dict[str, float] = {}
    for name in _FLAGS:
        limit = getattr(budget, name)
        if limit is not None:
            rest = max(0.0, limit - spent[name])
            left[name] = int(rest) if name in ("max_calls", "max_tokens") else rest
    carried = {name: spent[name] for name in _FLAGS}  # all of it: progress shows it even with no limit
    return budget.model_copy(update={**left, "carried": carried})


def _shown(name: str, value: float, *, as_flag: bool = False) -> str:
    """A limit's value for a message, or (`as_flag`) as its command-line flag takes it."""
    if name == "max_usd":
        return _plain(value) if as_flag else f"${_plain(value)}"
    if name == "max_seconds":
        return _plain(value / 60) if as_flag else f"{_plain(value / 60)} min"
    return f"{value:.0f}"


def _plain(value: float) -> str:
    """A number as typed: no exponent, no trailing zeros (0.0005, 6000, 1.25)."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def check_budget_left(budget: Budget, before: Usage | None, session_id: str) -> None:
    """Refuse a resume whose run has already spent one of its limits, before anything is spent again. Not for
    time: the final scoring is not bounded by it, so a run stopped there is resumed to finish it (the search,
    with no time left, stops at once with its best so far)."""
    if before is None:
        return
    spent = _spent_by_limit(before)
    for name, flag in _FLAGS.items():
        limit = getattr(budget, name)
        if name != "max_seconds" and limit is not None and spent[name] >= limit:
            raise BudgetExceeded(
                f"session {session_id}'s run spent {_shown(name, spent[name])} of its {flag} "
                f"{_shown(name, limit)} before it stopped; nothing is left to resume with",
                limit=name.removeprefix("max_"),
                hint=f"give the run a larger limit, e.g. promptomatix resume {session_id} {flag} "
                f"{_shown(name, spent[name] + limit, as_flag=True)}",
            )


def carried_note(budget: Budget, before: Usage | None) -> str | None:
    """The line a resumed run's report shows when earlier attempts' spending was counted."""
    if before is None or not any(getattr(budget, n) is not None for n in _FLAGS):
        return None
    spent = _spent_by_limit(before)
    parts = [f"{_shown(n, spent[n])} of {flag} {_shown(n, getattr(budget, n))}"
             for n, flag in _FLAGS.items() if getattr(budget, n) is not None]  # fmt: skip
    n = before.failed_calls
    failed = f" ({n} call{'s' if n != 1 else ''} that got no answer not counted)" if n else ""
    return ("resumed: the run had spent " + ", ".join(parts) + f" before it stopped{failed}; those count against its "
            "limits")  # fmt: skip
