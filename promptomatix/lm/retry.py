"""The LM boundary's retry rule: which failed attempts are tried again, and after how long.

A retry is a call (it takes a budget slot), so a delay that cannot fit in the time budget ends the call at once
with the provider's error, rather than sleeping into the deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptomatix.errors import LMCallError, ModelUnavailableError
from promptomatix.lm.usage import Budget

#: the longest Retry-After we sleep; a longer one is cut to this.
RETRY_AFTER_CAP = 60.0
CallError = LMCallError | ModelUnavailableError


@dataclass
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    retry_after_cap: float = RETRY_AFTER_CAP


def retry_delay(policy: RetryPolicy, budget: Budget, elapsed: float, e: CallError, attempt: int) -> float:
    """Seconds to wait before the next attempt; re-raises when no retry is due (or none would fit in time)."""
    if not getattr(e, "retryable", False) or attempt >= policy.max_retries:
        raise e
    asked = getattr(e, "retry_after", None)
    if asked is not None:
        delay = min(float(asked), policy.retry_after_cap)
    else:
        delay = min(policy.backoff_max, policy.backoff_base * (2**attempt))
    if budget.max_seconds is not None:
        left = budget.max_seconds - elapsed
        if delay >= left:
            why = f"Retry-After {asked:g} s" if asked is not None else f"a {delay:.1f} s backoff"
            raise LMCallError(
                f"{e.message}; {why} does not fit in the {max(left, 0):.0f} s left of the time budget",
                hint=e.hint,
            ) from e
    return delay
