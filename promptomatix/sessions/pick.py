"""Make a candidate of a run a new version, without model calls: by its id, or as the choice another λ makes.

A run keeps every candidate it tried, with its raw quality at each stage, its length and what rebuilds it
(instructions, demos, format line). Picking one adds a version whose prompt is exactly that candidate's, so its
export is that prompt and a later `refine` starts from it (followup.candidate_of reads the same three fields).
The picked version was not scored on the held-out test (that would take calls), unless it is the version's own
prompt (then it keeps that version's scores and, for DSPy, its compiled program); its valid score is the one
measured in the run, penalized under the run's λ even when `--lambda X` chose it (X is kept in `settings.picked`),
so every version's scores stay on one scale (sessions/scale.py). Picking the prompt that already is the latest
version adds nothing (a second click or a repeated command made identical versions). The CLI (`sessions pick`) and
the web UI both call this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
        raise _unscored(source, cand, hint)
    return cand


def _unscored(source: PromptVersion, cand: dict[str, Any], hint: str) -> SessionError:
    """Why a candidate has no valid score, from the run's note: a duplicate names the candidate it repeats (the
    message said "screened out" for every one, a duplicate too), and which to pick instead."""
    where = f"candidate #{cand.get('id')} of version {source.version}"
    note = str(cand.get("note") or "")
    if note.startswith("duplicate"):
        same = [c for c in source.candidates if c.get("prompt") == cand["prompt"] and c.get("id") != cand.get("id")]
        first = next(iter(same), None)
        scored = next((c for c in same if c.get("valid_raw") is not None), None)
        if first is not None:
            what = f"{where} is a duplicate of candidate #{first.get('id')} (the same prompt), so it was never scored"
            if scored is not None:
                return SessionError(what, hint=f"pick candidate #{scored.get('id')} instead: the same prompt, "
                                               f"valid {scored.get('valid_raw'):.3f}")  # fmt: skip
            return SessionError(f"{what}, and #{first.get('id')} was not scored on the valid rows either", hint=hint)
    why = f" ({note})" if note else ""
    return SessionError(f"{where} was never scored on the valid rows{why}", hint=hint)


def source_version(session: Session, version: int | None) -> PromptVersion:
    """`version`, or by default the latest version that has candidates: a picked version has none of its own, so
    picking twice from one run needed --version, and `sessions show --pareto` showed an empty front after a pick."""
    if version is not None or not session.versions:
        return session.get_version(version)
    return next((v for v in reversed(session.versions) if v.candidates), session.get_version(None))


@dataclass(frozen=True)
class Picked:
    """What a pick did: `version` is the new version, or the latest one when it already had that prompt."""

    version: PromptVersion
    added: bool
    source: int
    candidate: int
    lambda_penalty: float | None = None  # the λ it was chosen under (`--lambda`); its stored score is the run's λ

    def message(self) -> str:
        v = self.version
        if not self.added:
            return (f"candidate #{self.candidate} of v{self.source} is already the latest version, v{v.version}; "
                    "no version added")  # fmt: skip
        chosen = "" if self.lambda_penalty is None else f", the best under λ={self.lambda_penalty:g}"
        return f"v{v.version}: candidate #{self.candidate} of v{self.source}{chosen}"


def picked_note(version: PromptVersion) -> str | None:
    """Why a picked version has no paired verdict (the CLI and the UI both say it; the UI said only "n/a")."""
    picked = version.settings.get("picked")
    if not isinstance(picked, dict) or version.verdict:
        return None
    lam = picked.get("lambda")
    chosen = f" (the best under λ={lam:g})" if isinstance(lam, int | float) else ""
    return (f"picked candidate #{picked.get('candidate')} of v{picked.get('version')}{chosen}: valid score from the "
            "run; not scored on the held-out test")  # fmt: skip


def pick_candidate(
    session: Session, cand_id: int, *, version: int | None = None, lambda_penalty: float | None = None
) -> PromptVersion:
    """Add candidate `cand_id` of `version` (default: the latest with candidates) as the next version, its
    parent; the latest version when its prompt already is that candidate's (see `pick`)."""
    return pick(session, cand_id, version=version, lambda_penalty=lambda_penalty).version


def pick(session: Session, cand_id: int, *, version: int | None = None, lambda_penalty: float | None = None) -> Picked:
    """As `pick_candidate`, and say whether a version was added (callers tell the user when none was)."""
    source = source_version(session, version)
    cand = _candidate(source, cand_id)
    latest = session.latest_version()
    if latest is not None and latest.prompt == cand["prompt"]:
        return Picked(latest, added=False, source=source.version, candidate=cand_id, lambda_penalty=lambda_penalty)
    # The score as the run measured it, penalized under the run's λ like every other version's: a score penalized
    # under `--lambda X` made `sessions list`'s "best" compare numbers on two scales (review 20, finding 6).
    raw, pen = cand.get("valid_raw"), cand.get("valid_penalized")
    settings: dict[str, Any] = {
        "picked": {"version": source.version, "candidate": cand_id},
        "format_line": cand.get("format_line"),
    }
    if lambda_penalty is not None:
        settings["picked"]["lambda"] = lambda_penalty
    v = session.add_version(
        cand["prompt"],
        backend=source.backend,
        parent=source.version,
        instructions=cand.get("instructions"),
        demos=list(cand.get("demos") or []),
        settings=settings,
        valid=Score(raw=raw, penalized=pen),
        initial_valid=source.initial_valid,
        **_kept_from_source(source, cand),
    )
    session.add_event("picked", version=v.version, source_version=source.version, candidate=cand_id)
    return Picked(v, added=True, source=source.version, candidate=cand_id, lambda_penalty=lambda_penalty)


def _kept_from_source(source: PromptVersion, cand: dict[str, Any]) -> dict[str, Any]:
    """The version's own choice keeps its held-out scores and DSPy program (they were measured/compiled for exactly
    this prompt); any other candidate has neither (a DSPy run saves only its compiled program)."""
    if cand["prompt"] != source.prompt:  # the initial program of a DSPy run is saved with its candidate record
        return {"program_json": cand["program_json"]} if cand.get("program_json") else {}
    return {"test": source.test, "initial_test": source.initial_test, "verdict": source.verdict,
            "program_json": source.program_json}  # fmt: skip


def pick_for_lambda(session: Session, lambda_penalty: float, *, version: int | None = None) -> PromptVersion:
    """Re-select among the candidates scored on valid as a run with `lambda_penalty` would have, and add it."""
    return pick_lambda(session, lambda_penalty, version=version).version


def pick_lambda(session: Session, lambda_penalty: float, *, version: int | None = None) -> Picked:
    """As `pick_for_lambda`, and say whether a version was added."""
    if not math.isfinite(lambda_penalty) or lambda_penalty < 0:  # NaN would rank nothing and land in the file
        raise SessionError(f"λ must be a number, 0 or more, got {lambda_penalty}", hint="e.g. --lambda 0.005")
    source = source_version(session, version)
    best = best_for_lambda(candidate_points(source.candidates), lambda_penalty)
    if best is None:
        raise SessionError(
            f"version {source.version} has no candidates scored on valid",
            hint="pick from a version made by `optimize` or `refine`",
        )
    return pick(session, best.candidate_id, version=source.version, lambda_penalty=lambda_penalty)


def front_rows(version: PromptVersion) -> list[dict[str, Any]]:
    """The stored candidates on the quality-vs-length front, best first (recomputed when not stored)."""
    by_id = {c.get("id"): c for c in version.candidates}
    ids = version.pareto or [p.candidate_id for p in pareto_front(candidate_points(version.candidates))]
    return [by_id[i] for i in ids if i in by_id]


def no_program_error(session: Session, version: PromptVersion) -> SessionError | None:
    """Why a picked version of a DSPy run has no program to export: a run saves only the program it compiled, and
    a candidate other than that one has none (the store's error named only the backend)."""
    picked = version.settings.get("picked")
    if version.program_json is not None or not isinstance(picked, dict):
        return None
    src = picked.get("version")
    if not any(v.version == src and v.program_json is not None for v in session.versions):
        return None  # picked from a run without a program (meta backend): the store's error says so
    return SessionError(
        f"version {version.version} is candidate #{picked.get('candidate')} of v{src}, made by `sessions pick`; a "
        f"DSPy run saves only the program it compiled (v{src}'s), and this candidate is not it",
        hint=f"export it with --format text, or v{src}'s program with --version {src} --format dspy",
    )
