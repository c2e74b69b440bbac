"""Checks for the ways a run can end badly: the task model could not answer, or another process already runs
the session; and the one-line causes they report.

The rule they serve: a run whose model could not answer is `failed` with one line naming the cause and the fix
(recorded by `promptomatix.run.ending`, the one handler of failures and Ctrl-C); it is never reported as a result.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from promptomatix.errors import ModelUnavailableError, PluginError

if TYPE_CHECKING:
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.metrics import EvalReport
    from promptomatix.result import ScoreCI
    from promptomatix.sessions import SessionStore

log = logging.getLogger(__name__)

#: More than this share of held-out rows erroring makes the run `failed`: its verdict would measure outages.
MAX_HELD_OUT_ERROR_SHARE = 0.5


def run_owner() -> dict[str, Any]:
    """Who is running a session (kept in its progress, shown by `sessions show`)."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the recorded owner process of a session still exists (same host, not this process)."""
    if not owner or owner.get("host") != socket.gethostname() or owner.get("pid") == os.getpid():
        return False
    try:
        os.kill(int(owner["pid"]), 0)
    except (ProcessLookupError, ValueError, TypeError, KeyError):
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


@contextmanager
def run_lock(store: SessionStore, session_id: str, command: str) -> Iterator[None]:
    """Hold the session's run lock for a whole run, so a second refine/resume/delete refuses while it lives.

    Uses `SessionStore.run_lock` (which names the live process when it refuses). Stores without one fall back
    to the recorded owner: a session marked running by a live process is refused.
    """
    lock = getattr(store, "run_lock", None)
    if lock is not None:
        with lock(session_id, command=command):
            yield
        return
    from promptomatix.errors import SessionError

    session = store.load(session_id)
    owner = (session.progress or {}).get("owner")
    if session.status == "running" and owner_alive(owner):
        raise SessionError(
            f"session {session_id} is in use by process {owner['pid']}",
            hint="wait for it to finish, or stop it (Ctrl-C) and try again",
        )
    yield


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a provider's multi-line error stays one line of output, without credentials: an
    error may quote a URL with a password in it (a tracking server's, a provider's api_base)."""
    from promptomatix.sessions.secrets import scrub_text

    flat = " ".join(scrub_text(str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def provider_cause(boundary: LMBoundary | None, role: str, report: EvalReport | None = None) -> str:
    """The first provider error of `role` (the boundary's record), else the first errored row of `report`."""
    first = getattr(boundary, "first_error", None)
    err = first(role) if callable(first) else None
    if err is not None:
        return one_line(str(err))
    for rec in report.records if report is not None else []:
        if rec.error:
            return one_line(rec.error)
    return "no error was recorded"


def require_answers(report: EvalReport, boundary: LMBoundary | None, stage: str) -> None:
    """Every task call of a stage failed: nothing was measured, so the run cannot go on as if it had."""
    if report.n and report.n_errors >= report.n:
        raise ModelUnavailableError(
            f"the task model could not answer: all {report.n} calls {stage} failed: "
            + provider_cause(boundary, "task", report)
        )


def require_task_answered(boundary: LMBoundary) -> None:
    """Every task call this run sent failed (cached replays aside): no new prompt was ever measured."""
    task = boundary.usage().by_role["task"]
    if task.calls and task.failed_calls >= task.calls:
        raise ModelUnavailableError(
            f"the task model could not answer: all {task.calls} task calls of this run failed: "
            + provider_cause(boundary, "task")
        )


def require_readable_answers(reports: list[Any], answered_by: str = "") -> None:
    """A label task whose model never once answered with a label (garbage, prose, another format) measured nothing.

    Only when every held-out answer of every prompt was unreadable: a weak model that is sometimes right is a
    result to report, a model that never produced a label is a failed run. `answered_by` names a plugin backend
    whose predictors gave the answers: they may never have asked the task model, so the blame is not its alone.
    """
    records = [r for rep in reports if rep is not None for r in rep.records if r.error is None]
    if not records or any(r.predicted is None or r.predicted != "" for r in records):
        return
    first = next((r.output for r in records if r.output), None)
    shown = str(next(iter(first.values())) if isinstance(first, dict) and first else first)[:80]
    who = f"the predictors of {answered_by}" if answered_by else "the task model"
    hint = "check --model/--api-base, or use a model that follows the output format"
    raise ModelUnavailableError(
        f"{who} never gave a readable answer: none of the {len(records)} held-out answers was one of the labels "
        f"(first: {shown!r})",
        hint=f"check that plugin's predictors; {hint}" if answered_by else hint,
    )


def held_out_notes(
    initial: ScoreCI | None,
    best: ScoreCI | None,
    split: str,
    boundary: LMBoundary | None,
    same: bool,
    predictor_error: PluginError | None = None,
) -> list[str]:
    """Notes on held-out errors; ModelUnavailableError when more than half of either prompt's rows errored, or
    `predictor_error` when a plugin backend's predictor failed (that is the cause, not the task model)."""
    notes: list[str] = []
    for name, score in (("initial", initial), ("optimized", None if same else best)):
        if score is None or not score.n_errors:
            continue
        share = score.n_errors / score.n if score.n else 1.0
        if share > MAX_HELD_OUT_ERROR_SHARE and predictor_error is not None:
            e = predictor_error
            raise PluginError(e.message, hint=e.hint, plugin=e.plugin) from e
        if share > MAX_HELD_OUT_ERROR_SHARE:
            raise ModelUnavailableError(
                f"the task model could not answer: {score.n_errors} of {score.n} held-out {split} rows errored "
                f"scoring the {name} prompt: " + provider_cause(boundary, "task")
            )
        notes.append(f"{score.n_errors} of {score.n} held-out {split} rows errored scoring the {name} prompt")
    if notes:
        notes.append("rows that errored scored 0, so the comparison is unreliable")
    missing = [name for name, score in (("initial", initial), ("optimized", best)) if score is None]
    if missing and not (same and initial is not None):  # a score is None only when the budget stopped its scoring
        notes.append(f"the budget ran out scoring the held-out {split} rows: no {' and no '.join(missing)} score, so "
                     "no comparison (raise the budget)")  # fmt: skip
    return notes
