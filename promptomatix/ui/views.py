"""What the pages show, computed from sessions: rows for the list, diffs, highlighted spans, the chart.

Only presentation lives here; scores, verdicts and fronts come from the session as the run stored them.
Fields later issues add (a paired `verdict`, a Pareto front, per-example test results) are read when present
and shown as "n/a" otherwise.
"""

from __future__ import annotations

import difflib
import itertools
from typing import Any

from promptomatix.metrics.pareto import read_words
from promptomatix.sessions.models import FeedbackItem, PromptVersion, Session

SORT_KEYS = ("created", "score", "cost", "calls", "status")
STATUSES = ("created", "running", "interrupted", "completed", "failed")


def _field(version: PromptVersion, *names: str) -> Any:
    """A version field that may not exist yet in this schema: the attribute, else the same key in settings."""
    for name in names:
        value = getattr(version, name, None)
        if value is None or value == [] or value == {}:  # an older version without it: look in settings
            value = (version.settings or {}).get(name)
        if value is not None and value != [] and value != {}:
            return value
    return None


def verdict_of(version: PromptVersion | None) -> dict[str, Any] | None:
    """The paired held-out verdict as {"outcome": ..., "details": [...]}, or None when the run stored none."""
    if version is None:
        return None
    raw = _field(version, "verdict")
    if raw is None:
        return None
    if isinstance(raw, str):
        return {"outcome": raw, "details": []}
    if isinstance(raw, dict) and "wins" in raw:  # a stored metrics.verdict.PairedVerdict: its own words
        from promptomatix.metrics.verdict import PairedVerdict

        v = PairedVerdict.model_validate(raw)
        return {"outcome": v.outcome, "details": [line for line in (v.summary(), v.length_note()) if line]}
    if isinstance(raw, dict):
        outcome = raw.get("outcome") or raw.get("label") or raw.get("verdict") or "?"
        details = [f"{k}: {_short_value(v)}" for k, v in raw.items() if k not in ("outcome", "label", "verdict")]
        return {"outcome": str(outcome), "details": details}
    outcome = getattr(raw, "outcome", None) or str(raw)
    return {"outcome": str(outcome), "details": []}


def version_extras(s: Session) -> dict[str, Any]:
    """What the version page shows beside scores: every version's valid score under the session's λ (`lam`; a
    version picked under another λ included, see sessions/scale.py), for a picked version why its verdict is n/a
    (in the words `sessions show` uses), and the length the front is decided on (`read_words`)."""
    from promptomatix.sessions.pick import picked_note
    from promptomatix.sessions.scale import comparable_valid, session_lambda

    return {
        "lam": session_lambda(s),
        "valid_of": {v.version: comparable_valid(s, v) for v in s.versions},
        "picked_notes": {v.version: picked_note(v) for v in s.versions},
        "read_words": read_words,
    }


def _short_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple) and all(isinstance(x, int | float) for x in value):
        return "[" + ", ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in value) + "]"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def test_examples(version: PromptVersion) -> list[dict[str, Any]] | None:
    """Per-example held-out results (input, expected, got, score, feedback) when the run stored them."""
    rows = _field(version, "test_examples", "test_results", "examples")
    if not isinstance(rows, list):
        return None
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        score = r.get("score", r.get("raw_score"))
        out.append(
            {
                "input": r.get("input", r.get("inputs", r.get("user_input", ""))),
                "expected": r.get("expected", r.get("gold", r.get("expected_output", ""))),
                "got": r.get("got", r.get("output", r.get("ai_output", ""))),
                "score": score,
                "feedback": r.get("feedback") or r.get("error") or "",
                "failed": isinstance(score, int | float) and score < 1.0,
            }
        )
    return out


def session_row(s: Session) -> dict[str, Any]:
    """One line of the sessions page."""
    best = max(
        (v for v in s.versions if v.test is not None),
        key=lambda v: (v.test.mean, v.version),  # type: ignore[union-attr]
        default=None,
    )
    latest = s.latest_version()
    spent = s.total_spent()  # every run's calls, failed and interrupted ones included
    cfg = s.run_config or {}
    return {
        "id": s.session_id,
        "status": s.status,
        "task": s.description or s.raw_input.strip().split("\n")[0],
        "backend": latest.backend if latest else cfg.get("backend", ""),
        "model": cfg.get("model") or "",
        "teacher": cfg.get("teacher_model") or "",
        "best": best.test if best else None,
        "best_version": best.version if best else None,
        "verdict": verdict_of(best or latest),
        "verdict_note": _picked_note(best or latest),
        "versions": len(s.versions),
        "open_feedback": len(s.open_feedback()),
        "calls": spent.calls,
        "cost": spent.cost_usd,
        "created": s.created_at,
    }


def _picked_note(version: PromptVersion | None) -> str | None:
    from promptomatix.sessions.pick import picked_note

    return picked_note(version) if version is not None else None


def filter_sort(rows: list[dict[str, Any]], q: str, status: str, sort: str, desc: bool) -> list[dict[str, Any]]:
    q = q.strip().lower()
    if q:
        rows = [r for r in rows if q in f"{r['id']} {r['task']} {r['backend']} {r['model']}".lower()]
    if status in STATUSES:
        rows = [r for r in rows if r["status"] == status]

    def key(r: dict[str, Any]) -> Any:
        if sort == "score":
            return (r["best"] is not None, r["best"].mean if r["best"] else 0.0)
        if sort == "cost":
            return (r["cost"] is not None, r["cost"] or 0.0)
        if sort in ("calls", "status"):
            return r[sort]
        return r["created"]

    return sorted(rows, key=key, reverse=desc)


def side_by_side(a: str, b: str) -> list[dict[str, Any]]:
    """Rows of a two-column diff: each has left/right line numbers and text, and a kind (same/del/add/change)."""
    left, right = a.splitlines(), b.splitlines()
    rows: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        n = max(i2 - i1, j2 - j1)
        for k in range(n):
            li, rj = i1 + k, j1 + k
            rows.append(
                {
                    "kind": {"equal": "same", "delete": "del", "insert": "add", "replace": "change"}[tag],
                    "ln": li + 1 if li < i2 else None,
                    "left": left[li] if li < i2 else None,
                    "rn": rj + 1 if rj < j2 else None,
                    "right": right[rj] if rj < j2 else None,
                }
            )
    return rows


def prompt_segments(prompt: str, items: list[FeedbackItem]) -> list[dict[str, Any]]:
    """The prompt cut at feedback span edges, each piece with the ids of the items covering it (for <mark>)."""
    spans = [
        (f.start, f.end, f.id) for f in items if f.start is not None and f.end is not None and f.end <= len(prompt)
    ]
    cuts = sorted({0, len(prompt), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    out = []
    for lo, hi in itertools.pairwise(cuts):
        ids = [fid for s, e, fid in spans if s <= lo and hi <= e]
        out.append({"text": prompt[lo:hi], "ids": ids})
    return out


def utf16_to_index(text: str, units: int) -> int | None:
    """A browser's offset (UTF-16 code units) as a Python index (code points); None if it splits a character."""
    count = 0
    for i, ch in enumerate(text):
        if count == units:
            return i
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > units:
            return None
    return len(text) if count == units else None


def pareto_ids(version: PromptVersion) -> set[int] | None:
    """Candidate ids on the stored Pareto front, or None when the run stored no front."""
    front = _field(version, "pareto", "pareto_front", "front")
    marked = {c.get("id") for c in version.candidates if c.get("pareto") or c.get("on_front")}
    if front is None and not marked:
        return None
    ids: set[int] = {i for i in marked if isinstance(i, int)}
    for item in front or []:
        ident = item.get("id") if isinstance(item, dict) else item
        if isinstance(ident, int):
            ids.add(ident)
    return ids


def chart(version: PromptVersion, width: int = 560, height: int = 300, pad: int = 44) -> dict[str, Any] | None:
    """Quality (valid raw score) against the words the model reads, for every candidate, in SVG coordinates."""
    pts = [{**c, "length": read_words(c)} for c in version.candidates if isinstance(c.get("valid_raw"), int | float)]
    if not pts:
        return None
    front = pareto_ids(version) or set()
    max_len = max(c["length"] for c in pts) or 1
    lo = min(0.0, min(c["valid_raw"] for c in pts))
    hi = max(1.0, max(c["valid_raw"] for c in pts))

    def x(v: float) -> float:
        return round(pad + (width - 2 * pad) * v / max_len, 1)

    def y(v: float) -> float:
        return round(height - pad - (height - 2 * pad) * (v - lo) / ((hi - lo) or 1), 1)

    points = [
        {"id": c.get("id"), "x": x(c["length"]), "y": y(c["valid_raw"]), "front": c.get("id") in front,
         "label": f"#{c.get('id')}: {c['valid_raw']:.3f} at {c['length']} words read, ≈{c.get('tokens') or '?'} tokens"}
        for c in pts
    ]  # fmt: skip
    line = " ".join(f"{p['x']},{p['y']}" for p in sorted((p for p in points if p["front"]), key=lambda p: p["x"]))
    ticks_x = [{"pos": x(max_len * k / 4), "label": f"{max_len * k / 4:.0f}"} for k in range(5)]
    ticks_y = [{"pos": y(lo + (hi - lo) * k / 4), "label": f"{lo + (hi - lo) * k / 4:.2f}"} for k in range(5)]
    return {"w": width, "h": height, "pad": pad, "points": points, "front_line": line,
            "has_front": pareto_ids(version) is not None, "ticks_x": ticks_x, "ticks_y": ticks_y}  # fmt: skip
