"""Metrics over structured outputs: label sets (multi-label) and JSON records (information extraction).

Small models wrap JSON in prose and code fences, or emit it half-broken, so parsing is layered:
json, then json_repair (if installed), then a `"key": "value"` regex.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from promptomatix.metrics.text import as_text, normalize_label, shorten

logger = logging.getLogger(__name__)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_PAIR = re.compile(r'"([^"\\]+)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null)')
_SPLIT = re.compile(r"[,;\n|]")


def parse_json_object(text: Any) -> dict[str, Any] | None:
    """Best-effort parse of a JSON object from model output; None when nothing object-like is there."""
    if isinstance(text, Mapping):
        return dict(text)
    s = as_text(text).strip()
    if not s:
        return None
    fenced = _FENCE.search(s)
    candidates = [fenced.group(1).strip()] if fenced else []
    start, end = s.find("{"), s.rfind("}")
    if start != -1 and end > start:
        candidates.append(s[start : end + 1])
    candidates.append(s)
    for cand in candidates:
        try:
            value = json.loads(cand)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        import json_repair
    except ImportError:  # pragma: no cover - json_repair is a soft dependency
        json_repair = None
    if json_repair is not None and "{" in s:
        try:
            value = json_repair.loads(s[start:] if start != -1 else s)
        except Exception:  # json_repair is best-effort; fall through to the regex
            logger.debug("json_repair failed on %r", s[:80])
            value = None
        if isinstance(value, dict) and value:
            return value
    pairs = _PAIR.findall(s)
    if pairs:
        return {k: json.loads(v) for k, v in pairs}
    return None


def label_set(value: Any) -> set[str]:
    """Normalized label set from a list, a JSON list or a comma/semicolon/newline/pipe separated string."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                value = parsed
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [as_text(v) for v in value]
    else:
        items = _SPLIT.split(as_text(value))
    labels = {normalize_label(item.strip().lstrip("-*• ")) for item in items}
    labels.discard("")
    return labels


def set_scores(pred: set[str], gold: set[str]) -> tuple[float, float, float, float]:
    """(precision, recall, F1, Jaccard) of two label sets; two empty sets agree perfectly."""
    if not pred and not gold:
        return 1.0, 1.0, 1.0, 1.0
    tp = len(pred & gold)
    precision = tp / len(pred) if pred else 0.0
    recall = tp / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    jaccard = tp / len(pred | gold)
    return precision, recall, f1, jaccard


def set_feedback(pred: set[str], gold: set[str]) -> str:
    parts = []
    if gold - pred:
        parts.append("missing labels: " + ", ".join(sorted(gold - pred)))
    if pred - gold:
        parts.append("extra labels: " + ", ".join(sorted(pred - gold)))
    return "; ".join(parts) or "all labels correct"


def _norm_key(key: Any) -> str:
    return normalize_label(key).replace(" ", "_")


def _norm_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return json.dumps({_norm_key(k): _norm_value(v) for k, v in value.items()}, sort_keys=True)
    if isinstance(value, (list, tuple, set)):
        return json.dumps(sorted(_norm_value(v) for v in value))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return normalize_label(value)


def _present(record: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """key -> (original key, value), dropping empty values: an absent field and a null field mean the same."""
    out = {}
    for key, value in record.items():
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        out[_norm_key(key)] = (str(key), value)
    return out


def field_f1(pred: Mapping[str, Any], gold: Mapping[str, Any]) -> tuple[float, float, float, str]:
    """Field-level (precision, recall, F1, feedback): a field counts when its key and value both agree."""
    p, g = _present(pred), _present(gold)
    if not p and not g:
        return 1.0, 1.0, 1.0, "all fields correct (both empty)"
    notes: list[str] = []
    tp = 0
    for key, (name, gold_value) in g.items():
        if key not in p:
            notes.append(f"missing field {name}")
        elif _norm_value(p[key][1]) == _norm_value(gold_value):
            tp += 1
        else:
            notes.append(f"wrong field {name}: expected {shorten(gold_value)!r}, got {shorten(p[key][1])!r}")
    notes.extend(f"extra field {name}" for key, (name, _) in p.items() if key not in g)
    precision = tp / len(p) if p else 0.0
    recall = tp / len(g) if g else 0.0
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return precision, recall, f1, "; ".join(notes) or "all fields correct"
