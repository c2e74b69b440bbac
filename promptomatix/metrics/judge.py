"""LLM-judge rubric for open-ended outputs, combined with reference overlap when a reference exists.

The judge answers a 1-5 integer plus a reason as JSON; we parse it robustly (small judges wrap JSON in
prose) and map 1..5 to 0..1. A judge failure scores 0 with feedback and never crashes the run; only
BudgetExceeded propagates, because the caller must stop the run.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from promptomatix.errors import BudgetExceeded, MetricError
from promptomatix.metrics.result import MetricResult
from promptomatix.metrics.structured import parse_json_object
from promptomatix.metrics.text import rouge_l, shorten

if TYPE_CHECKING:
    from promptomatix.lm.types import ChatModel

logger = logging.getLogger(__name__)

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
}

_SYSTEM = (
    "You are a strict, fair grader. Grade the response to the task on a 1-5 scale: "
    "5 = fully correct, complete and well suited to the task; 4 = minor flaws; 3 = partly correct or "
    "incomplete; 2 = mostly wrong or off-task; 1 = wrong, empty or harmful. "
    'Answer only with JSON: {"score": <integer 1-5>, "reason": "<one sentence>"}.'
)
_SCORE_RE = re.compile(r'"?score"?\s*[:=]\s*"?(\d+(?:\.\d+)?)', re.I)
_OUT_OF_RE = re.compile(r"\b([1-5])\s*/\s*5\b")
_MAX_CHARS = 4000


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS] + " …[truncated]"


def build_messages(task_input: str, response: str, reference: str | None, task_type: str) -> list[dict]:
    parts = [f"Task type: {task_type}", f"Task input:\n{_clip(task_input) or '(none)'}"]
    if reference:
        parts.append(f"Reference answer (one good answer; others may also be fine):\n{_clip(reference)}")
    parts.append(f"Response to grade:\n{_clip(response) or '(empty)'}")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def parse_judge_answer(text: str) -> tuple[int, str] | None:
    """(score 1-5, reason) from the judge's text, or None when no valid score can be read."""
    obj = parse_json_object(text)
    raw: Any = None
    reason = ""
    if obj is not None and "score" in obj:
        raw, reason = obj.get("score"), str(obj.get("reason", "") or "")
    else:
        m = _SCORE_RE.search(text) or _OUT_OF_RE.search(text)
        if m:
            raw = m.group(1)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if not value.is_integer() or not 1 <= value <= 5:
        return None
    return int(value), reason


def judge_score(
    judge: ChatModel | None,
    *,
    task_input: str,
    response: str,
    reference: str | None,
    task_type: str,
    judge_weight: float = 0.5,
) -> MetricResult:
    """Judge score (1..5 -> 0..1), mixed with ROUGE-L by judge_weight when there is a reference."""
    has_ref = bool(reference and reference.strip())
    overlap = rouge_l(response, reference) if has_ref else None
    if judge is None:
        if overlap is None:
            raise MetricError(
                f"no judge model and no reference to score the {task_type} output",
                hint="configure a judge model (the teacher by default) or provide reference outputs",
            )
        return MetricResult(
            score=overlap,
            feedback=f"no judge configured; scored by ROUGE-L overlap with the reference ({overlap:.2f})",
            details={"rouge_l": overlap},
        )
    messages = build_messages(task_input, response, reference, task_type)
    try:
        answer = judge.chat(messages, json_schema=JUDGE_SCHEMA, temperature=0.0)
    except BudgetExceeded:
        raise
    except Exception as exc:  # a failed judge call must not crash the run; it scores 0 and says why
        logger.warning("judge call failed: %s", exc)
        return MetricResult(score=0.0, feedback=f"judge call failed ({type(exc).__name__}: {shorten(exc, 80)})")
    parsed = parse_judge_answer(answer if isinstance(answer, str) else json.dumps(answer))
    if parsed is None:
        return MetricResult(score=0.0, feedback=f"judge answer unreadable: {shorten(answer, 80)!r}")
    grade, reason = parsed
    judged = (grade - 1) / 4
    details = {"judge": judged}
    feedback = f"judge {grade}/5: {shorten(reason, 200)}" if reason else f"judge {grade}/5"
    if overlap is None:
        return MetricResult(score=judged, feedback=feedback, details=details)
    details["rouge_l"] = overlap
    score = judge_weight * judged + (1 - judge_weight) * overlap
    return MetricResult(score=score, feedback=f"{feedback}; ROUGE-L {overlap:.2f}", details=details)
