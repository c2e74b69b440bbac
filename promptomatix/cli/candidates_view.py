"""The lines of `sessions show --candidates` and `--pareto`: plain text, testable without a terminal.

The front is decided on raw valid quality against two lengths of the rendered prompt, what the task model reads on
every call: its words (demos included) and about how many tokens (metrics/pareto.py). The λ penalty counts
another length, the instructions' words without demos or contract lines. `--pareto` showed only the penalty's
count, so a candidate with the same score and fewer "words" was off the front with no visible reason (review 20,
finding 7); it now shows the front's measures, the penalty's beside them, and says which candidate keeps a
version's own prompt off the front.
"""

from __future__ import annotations

from typing import Any

from promptomatix.metrics.pareto import ParetoPoint, candidate_points, dominated_by, read_words


def num(v: Any) -> str:
    """A score to three places, or - when there is none."""
    return f"{v:.3f}" if isinstance(v, int | float) else "-"


def _short(text: Any, width: int) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def lengths(row: dict[str, Any]) -> str:
    """How long a candidate is as the front compares it (words read, ≈tokens), and as the λ penalty counts it."""
    tokens = f", ≈{row['tokens']} tokens" if row.get("tokens") else ""
    penalty = f" (λ counts {row['length']})" if row.get("length") is not None else ""
    return f"reads {read_words(row)} words{tokens}{penalty}"


def pareto_lines(session: Any, version: Any, *, defaulted: bool = False) -> list[str]:
    """The candidates no other beats on raw valid quality without reading more; `sessions pick` makes one a version."""
    from promptomatix.sessions.pick import front_rows

    rows = front_rows(version)
    if not rows:
        return [f"v{version.version} has no candidates scored on valid"]
    out = [f"quality-vs-length front of v{version.version} (raw scores, no length penalty; a candidate is on it "
           "unless another scores at least as well and reads no more words and tokens; minibatch → valid → "
           "confirmation):"]  # fmt: skip
    latest = session.latest_version()
    if defaulted and latest.version != version.version:
        out.append(f"(v{latest.version}, the latest version, has no candidates of its own: this is "
                   f"v{version.version}'s, the latest that has; --version N shows another)")  # fmt: skip
    for r in rows:
        stages = f"{num(r.get('minibatch_raw'))} → {num(r.get('valid_raw'))} → {num(r.get('confirm_raw'))}"
        out.append(
            f"#{r.get('id')} {r.get('origin')} · valid {num(r.get('valid_raw'))} · {lengths(r)} · "
            f'{r.get("n_demos", 0)} demos · {stages} · "{_short(r.get("instructions"), 70)}"'
            + is_version(session, r.get("prompt"))
        )
    out += _off_front_lines(session, version, {r.get("id") for r in rows})
    out.append(f"make one the next version: promptomatix sessions pick {session.session_id} CANDIDATE (or --lambda X)")
    return out


def _off_front_lines(session: Any, version: Any, on_front: set[Any]) -> list[str]:
    """Why a scored candidate that is one of the session's versions is not on the front (the user looks for it)."""
    points = candidate_points(version.candidates)
    by_id = {c.get("id"): c for c in version.candidates}
    out = []
    for p in points:
        mark = is_version(session, by_id[p.candidate_id].get("prompt"))
        if p.candidate_id in on_front or not mark:
            continue
        why = _why_off(p, points, by_id)
        out.append(f"off the front: #{p.candidate_id}{mark} · valid {num(p.quality)} · "
                   f"{lengths(by_id[p.candidate_id])} — {why}")  # fmt: skip
    return out


def _why_off(p: ParetoPoint, points: list[ParetoPoint], by_id: dict[Any, dict[str, Any]]) -> str:
    beaten = dominated_by(p, points)
    if beaten is not None:
        row = by_id[beaten.candidate_id]
        tokens = f", ≈{row['tokens']} tokens" if row.get("tokens") else ""
        return (f"#{beaten.candidate_id} scores {num(beaten.quality)} and reads {beaten.words} words{tokens}: "
                "at least as good, and no longer")  # fmt: skip
    twin = next((q for q in points if q.candidate_id != p.candidate_id and round(q.quality, 9) == round(p.quality, 9)
                 and q.words == p.words), None)  # fmt: skip
    return f"it ties with #{twin.candidate_id}, listed once" if twin else "the run stored another front"


def is_version(session: Any, prompt: Any) -> str:
    """The mark " ← v1, v3 (latest)": the versions whose prompt is this candidate's (a pick of the latest adds none)."""
    same = [v.version for v in session.versions if v.prompt == prompt]
    if not same:
        return ""
    latest = " (latest)" if same[-1] == session.versions[-1].version else ""
    return " ← " + ", ".join(f"v{n}" for n in same) + latest


def candidate_lines(version: int, rows: list[dict]) -> list[str]:
    """One line per candidate: where it came from and each stage's score, so a user sees why one won."""
    out = [f"candidates of v{version} (scores penalized by length; minibatch → valid → confirmation):"]
    for r in rows:
        note = f" ({r['note']})" if r.get("note") else ""
        stages = f"{num(r.get('minibatch_score'))} → {num(r.get('valid_penalized'))} → {num(r.get('confirm_score'))}"
        out.append(
            f"#{r.get('id')} r{r.get('round')} {r.get('origin')} · {r.get('n_demos', 0)} demos · "
            f'λ counts {r.get("length", "-")} words · {stages} · "{_short(r.get("instructions"), 90)}"{note}'
        )
    return out
