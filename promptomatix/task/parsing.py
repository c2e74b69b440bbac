"""Lenient JSON extraction from model output: small models wrap JSON in prose, fences or break it slightly."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _candidates(text: str) -> list[str]:
    out = [text.strip()]
    out.extend(m.group(1).strip() for m in _FENCE.finditer(text))
    for open_, close in (("{", "}"), ("[", "]")):
        start, end = text.find(open_), text.rfind(close)
        if 0 <= start < end:
            out.append(text[start : end + 1])
    return [c for c in dict.fromkeys(out) if c]


def parse_json_loose(text: str | None) -> Any | None:
    """The first JSON object or array found in `text`, repaired if needed; None when there is none."""
    if not text or not isinstance(text, str):
        return None
    candidates = _candidates(text)
    for cand in candidates:
        try:
            value = json.loads(cand)
        except (json.JSONDecodeError, ValueError):
            continue
        if isinstance(value, (dict, list)):
            return value
    try:
        import json_repair  # optional; comes with dspy
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    for cand in candidates:
        if not cand.lstrip().startswith(("{", "[")):
            continue
        try:
            value = json_repair.loads(cand)
        except Exception:  # json_repair raises assorted errors on hopeless input
            log.debug("json_repair gave up on %r", cand[:80])
            continue
        if isinstance(value, (dict, list)) and value:
            return value
    return None
