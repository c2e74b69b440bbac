"""The quality-vs-length Pareto front over a run's candidates.

A candidate is on the front when no other candidate scored at least as well on the same valid rows while being at
most as long (in words and in tokens), and strictly better on one of them. Length is what the task model reads on every
call (the rendered prompt: instructions, demos and the format line), so it stands for latency and cost per call. Only candidates
scored on the valid split are compared: minibatch screening scores are on different rows and are not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel


class ParetoPoint(BaseModel):
    """One candidate as the front sees it."""

    candidate_id: int
    quality: float  # raw valid score: the length penalty is the front's other axis, not part of quality
    words: int  # words of the whole rendered prompt (demos included): one of the front's two length measures
    origin: str = ""
    tokens: int = 0  # ≈ tokens the task model reads on every call besides the row (0: not recorded)
    length: int | None = None  # words the length penalty counts (instructions, format line, demos)


def words_of(text: str) -> int:
    return len(text.split())


def read_words(candidate: Mapping[str, Any]) -> int:
    """The length the front is decided on (with ≈tokens), as a stored candidate gives it: the words of the whole
    rendered prompt the model reads, demos included (the λ penalty's `length` counts no demos)."""
    return words_of(str(candidate.get("prompt") or ""))


def approx_tokens(text: str) -> int:
    """Tokens a model reads for `text`, at about 4 characters a token (no tokenizer is loaded for this)."""
    return (len(text) + 3) // 4 if text else 0


def candidate_points(candidates: Iterable[Mapping[str, Any]]) -> list[ParetoPoint]:
    """Points for the candidates that were scored on valid (dicts as stored in a session version)."""
    points = []
    for c in candidates:
        if c.get("valid_raw") is None:
            continue
        points.append(
            ParetoPoint(
                candidate_id=int(c["id"]),
                quality=float(c["valid_raw"]),
                words=read_words(c),
                origin=str(c.get("origin") or ""),
                tokens=int(c.get("tokens") or 0),
                length=c.get("length"),
            )
        )
    return points


def dominates(a: ParetoPoint, b: ParetoPoint, *, tolerance: float = 1e-9) -> bool:
    """`a` scores at least as well as `b` and reads no more words and tokens, and is strictly better on one."""
    no_worse = a.quality >= b.quality - tolerance and a.words <= b.words and a.tokens <= b.tokens
    better = a.quality > b.quality + tolerance or a.words < b.words or a.tokens < b.tokens
    return no_worse and better


def dominated_by(point: ParetoPoint, points: Iterable[ParetoPoint]) -> ParetoPoint | None:
    """A point of the front that keeps `point` off it (None: `point` is not dominated), so a listing can say why
    a candidate is missing: the best-quality, then shortest, such point."""
    front = pareto_front(points)
    return next((q for q in front if dominates(q, point)), None)


def pareto_front(points: Iterable[ParetoPoint], *, tolerance: float = 1e-9) -> list[ParetoPoint]:
    """The non-dominated points, best quality first; of identical (quality, words) points the first is kept."""
    pts = list(points)
    front: list[ParetoPoint] = []
    seen: set[tuple[float, int]] = set()
    for p in pts:
        if any(dominates(q, p, tolerance=tolerance) for q in pts):
            continue
        key = (round(p.quality, 9), p.words)
        if key in seen:
            continue
        seen.add(key)
        front.append(p)
    return sorted(front, key=lambda p: (-p.quality, p.words))


def penalized(point: ParetoPoint, lambda_penalty: float) -> float:
    """The selection score under another λ: raw quality × exp(-λ · words the penalty counts)."""
    length = point.length if point.length is not None else point.words
    return point.quality * math.exp(-lambda_penalty * length)


def best_for_lambda(points: Iterable[ParetoPoint], lambda_penalty: float) -> ParetoPoint | None:
    """The candidate a run with this λ would have chosen on valid (ties: shorter, then earlier); None if none."""
    pts = list(points)
    if not pts:
        return None
    return max(pts, key=lambda p: (round(penalized(p, lambda_penalty), 12), -p.words, -p.candidate_id))
