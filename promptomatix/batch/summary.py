"""One row per job for the batch's summary: read from the job's session, so a skipped job reports like a run one."""

from __future__ import annotations

import csv
import io
from typing import Any

from pydantic import BaseModel

from promptomatix.sessions import SessionStore


class JobRow(BaseModel):
    """A job's outcome. `verdict` is the run's own when it records one, else the sign of the held-out change."""

    name: str
    key: str
    session_id: str | None = None
    status: str  # completed | failed | interrupted | pending
    skipped: bool = False
    verdict: str | None = None
    initial_valid: float | None = None
    optimized_valid: float | None = None
    initial_test: float | None = None
    optimized_test: float | None = None
    calls: int | None = None
    cost_usd: float | None = None
    seconds: float | None = None
    attempts: int = 0
    node: str | None = None
    error: str | None = None


def job_row(
    name: str,
    key: str,
    store: SessionStore,
    session_id: str | None,
    *,
    status: str | None = None,
    attempts: int = 0,
    seconds: float | None = None,
    node: str | None = None,
    error: str | None = None,
    skipped: bool = False,
) -> JobRow:
    row = JobRow(name=name, key=key, session_id=session_id, status=status or "pending", attempts=attempts,
                 seconds=seconds, node=node, error=error, skipped=skipped)  # fmt: skip
    if not session_id or not store.exists(session_id):
        return row
    session = store.load(session_id)
    row.status = status or session.status
    if session.status == "completed":  # the session is the truth (a job completed before a driver crash)
        row.status = "completed"
        row.error = None
    spent = session.total_spent()  # every attempt's calls, a failed or interrupted one's too
    row.calls = spent.calls
    row.cost_usd = None if spent.cost_usd is None else round(spent.cost_usd, 6)
    version = session.latest_version()
    if version is None or session.status != "completed":
        return row
    row.initial_valid = version.initial_valid.penalized if version.initial_valid else None
    row.optimized_valid = version.valid.penalized if version.valid else None
    row.initial_test = version.initial_test.mean if version.initial_test else None
    row.optimized_test = version.test.mean if version.test else None
    if row.seconds is None:
        row.seconds = version.duration_s
    row.verdict = _verdict(version, row.initial_test, row.optimized_test)
    return row


def _verdict(version: Any, initial: float | None, optimized: float | None) -> str | None:
    own = getattr(version, "verdict", None) or (version.settings or {}).get("verdict")
    if isinstance(own, dict):  # the run's paired verdict (metrics.verdict.PairedVerdict): its outcome
        own = own.get("outcome") or own.get("label") or own.get("verdict")
    if isinstance(own, str) and own:
        return own
    if initial is None or optimized is None:
        return None
    delta = optimized - initial
    word = "better" if delta > 0 else "worse" if delta < 0 else "same"
    return f"{word} ({delta:+.3f} test)"


def rows_json(rows: list[JobRow]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in rows]


def rows_csv(rows: list[JobRow]) -> str:
    out = io.StringIO()
    fields = list(JobRow.model_fields)
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.model_dump(mode="json").items()})
    return out.getvalue()


def counts(rows: list[JobRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out
