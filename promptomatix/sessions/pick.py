"""Make a candidate of a run a new version, without model calls: by its id, or as the choice another λ makes.

A run keeps every candidate it tried, with its raw quality at each stage, its length and what rebuilds it
(instructions, demos, format line). Picking one adds a version whose prompt is exactly that candidate's, so its
export is that prompt and a later `refine` starts from it (followup.candidate_of reads the same three fields).
The picked version was not scored on the held-out test (that would take calls), unless it is the version's own
prompt; its valid score is the one measured in the run. The CLI (`sessions pick`) and the web UI both call this.
"""

from __future__ import annotations

import math
from typing import Any

from promptomatix.errors import NotFoundError, SessionError
from promptomatix.metrics.pareto import best_for_lambda, candidate_points, pareto_front
from promptomatix.sessions.models import PromptVersion, Score, Session


def _candidate(source: PromptVersion, cand_id: int) -> dict[str, Any]:
    cand = next((c for c in source.candidates if c.get("id") == cand_id), None)
    have = ", ".join(f"#{c.get('id')}" for c in source.candidates if c.get("valid_raw") is not None)
    hint = f"candidates scored on valid: {have or 'none'} (see `sessions show ID --pareto`)"
    if cand is None or not isinstance(cand.get("prompt"), str):
        raise NotFoundError(f"version {source.version} has no candidate #{cand_id}", hint=hint)
    if cand.get("valid_raw") is None:  # it was picked as a version with no score at all
        raise SessionError(f"candidate #{cand_id} of version {source.version} was never scored on the valid rows "
                           "(screened out before them)", hint=hint)  # fmt: skip
    return cand


def _source(session: Session, version: int | None) -> PromptVersion:
    """`version`, or by default the latest version that has candidates (a picked version has none of its own, so
    picking twice from one run needed --version before)."""
    if version is not None or not session.versions:
        return session.get_version(version)
    return next((v for v in reversed(session.versions) if v.candidates), session.get_version(None))


def pick_candidate(
    session: Session, cand_id: int, *, version: int | None = None, lambda_penalty: float | None = None
) -> PromptVersion:
    """Add candidate `cand_id` of `version` (default: the latest with candidates) as the next version, its
    parent."""
    source = _source(session, version)
    cand = _candidate(source, cand_id)
    raw = cand.get("valid_raw")
    pen = cand.get("valid_penalized")
    if lambda_penalty is not None and raw is not None:
        pen = raw * math.exp(-lambda_penalty * int(cand.get("length") or len(str(cand["prompt"]).split())))
    settings: dict[str, Any] = {
        "picked": {"version": source.version, "candidate": cand_id},
        "format_line": cand.get("format_line"),
    }
    if lambda_penalty is not None:
        settings["picked"]["lambda"] = lambda_penalty
    same = cand["prompt"] == source.prompt  # the version's own choice: its held-out scores still hold
    held = {"test": source.test, "initial_test": source.initial_test, "verdict": source.verdict} if same else {}
    v = session.add_version(
        cand["prompt"],
        backend=source.backend,
        parent=source.version,
        instructions=cand.get("instructions"),
        demos=list(cand.get("demos") or []),
        settings=settings,
        valid=Score(raw=raw, penalized=pen),
        initial_valid=source.initial_valid,
        **held,
    )
    session.add_event("picked", version=v.version, source_version=source.version, candidate=cand_id)
    return v


def pick_for_lambda(session: Session, lambda_penalty: float, *, version: int | None = None) -> PromptVersion:
    """Re-select among the candidates scored on valid as a run with `lambda_penalty` would have, and add it."""
    if not math.isfinite(lambda_penalty) or lambda_penalty < 0:  # NaN would rank nothing and land in the file
        raise SessionError(f"λ must be a number, 0 or more, got {lambda_penalty}", hint="e.g. --lambda 0.005")
    source = _source(session, version)
    best = best_for_lambda(candidate_points(source.candidates), lambda_penalty)
    if best is None:
        raise SessionError(
            f"version {source.version} has no candidates scored on valid",
            hint="pick from a version made by `optimize` or `refine`",
        )
    return pick_candidate(session, best.candidate_id, version=source.version, lambda_penalty=lambda_penalty)


def front_rows(version: PromptVersion) -> list[dict[str, Any]]:
    """The stored candidates on the quality-vs-length front, best first (recomputed when not stored)."""
    by_id = {c.get("id"): c for c in version.candidates}
    ids = version.pareto or [p.candidate_id for p in pareto_front(candidate_points(version.candidates))]
    return [by_id[i] for i in ids if i in by_id]
