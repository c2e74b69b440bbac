"""The one place a run's bad endings are handled: Ctrl-C → `interrupted` (best so far kept as a version, exit 130,
raised as RunInterrupted, which is not an Exception), an error → `failed` with its one-line cause. Whatever happens, the
session is never left `running`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from promptomatix.errors import (
    BudgetExceeded,
    DataError,
    ModelUnavailableError,
    NoSearchFits,
    OptimizerError,
    RunInterrupted,
)
from promptomatix.run_guard import one_line, provider_cause

if TYPE_CHECKING:
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.run.recorder import SessionRecorder
    from promptomatix.sessions.models import Usage
    from promptomatix.task import TaskSpec

NO_ERROR = "no error was recorded"
log = logging.getLogger(__name__)


@contextmanager
def ending(
    recorder: SessionRecorder,
    boundary: Callable[[], LMBoundary | None],
    spec: Callable[[], TaskSpec | None],
    backend: str,
) -> Iterator[None]:
    """Run the stages inside; `boundary`/`spec` are read when something goes wrong (they fill in as stages run)."""
    try:
        yield
    except RunInterrupted:  # already saved by an inner run (first: the API's is a KeyboardInterrupt too)
        raise
    except KeyboardInterrupt:  # re-raised as RunInterrupted, a BaseException: no `except Exception` eats it
        if recorder.session_id is None:
            raise
        raise recorder.interrupted(spec(), backend, _spent(boundary())) from None
    except (BudgetExceeded, NoSearchFits) as e:  # a budget spent on failing calls: the failure is the cause
        err = _with_provider_error(e, boundary()) if isinstance(e, BudgetExceeded) else _failures_first(e, boundary())
        recorder.failed(one_line(str(err)), _spent(boundary()))
        if err is e:
            raise
        raise err from e
    except DataError as e:
        cause = provider_cause(boundary(), "teacher")
        if cause == NO_ERROR:
            recorder.failed(one_line(str(e)), _spent(boundary()))
            raise
        # the data is missing because the teacher could not answer: that is the cause to show
        err = ModelUnavailableError(f"the teacher model could not answer: {cause}")
        recorder.failed(one_line(str(err)), _spent(boundary()))
        raise err from e
    except OptimizerError as e:  # its baseline is saved: a resume retries the optimizer on it
        recorder.failed(one_line(str(e)), _spent(boundary()))
        sid = recorder.session_id
        raise OptimizerError(
            e.message, hint=f"{e.hint}; or `promptomatix resume {sid}`, the paid calls replayed"
        ) from e
    except Exception as e:
        recorder.failed(one_line(str(e)), _spent(boundary()))
        raise


def _spent(boundary: LMBoundary | None) -> Usage | None:
    """What the run spent, for the session's record; None if it ended before it had a boundary."""
    from promptomatix.run.recorder import usage_of

    try:
        return usage_of(boundary) if boundary is not None else None
    except Exception as e:  # counts a client made up must not keep the session from being marked as ended
        log.warning("could not count what the run spent: %s", e)
        return None


def _first_failure(boundary: LMBoundary | None) -> tuple[str, Any] | None:
    """The role whose calls failed and its first provider error (task first), or None."""
    for role in ("task", "teacher"):
        first = boundary.first_error(role) if boundary is not None else None
        if first is not None:
            return role, first
    return None


def _with_provider_error(e: BudgetExceeded, boundary: LMBoundary | None) -> BudgetExceeded:
    """A budget spent on retrying a failing provider: the provider's error is the cause worth reading, and its fix
    the one to give (raising the budget only pays for more failures)."""
    if (found := _first_failure(boundary)) is None:
        return e
    role, first = found
    return BudgetExceeded(f"{e.message}; meanwhile the {role} model's calls failed: {one_line(first.message)}",
                          limit=e.limit, hint=first.hint or e.hint)  # fmt: skip


def _failures_first(e: NoSearchFits, boundary: LMBoundary | None) -> NoSearchFits | ModelUnavailableError:
    """"No search fits the budget" after failed calls spent it (a 429ing server, an --api-base nothing answers): the
    provider's error is the cause, and "use --max-calls 55" would only pay for more failures."""
    if boundary is None or (found := _first_failure(boundary)) is None:
        return e
    role, first = found
    used = boundary.usage().by_role.get(role)
    if used is None or not used.failed_calls:
        return e
    left = e.message.removeprefix("no search fits the budget: ")
    return ModelUnavailableError(
        f"the {role} model's calls failed ({used.failed_calls} of {used.calls}): {one_line(first.message)}; "
        f"the calls they spent left no search in the budget ({left})",
        hint=first.hint or "check --model, --api-base and --api-key",
    )
