"""Text normalization and the reference-based text metrics (SQuAD EM/F1, numbers, ROUGE-L, chrF, BLEU).

Pure functions, all scores in [0, 1]. rouge_score and sacrebleu are imported inside the functions that use
them, so importing the metrics package stays cheap.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from fractions import Fraction
from functools import lru_cache
from typing import Any

_PUNCT_TABLE = str.maketrans({c: " " for c in string.punctuation})
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def as_text(value: Any) -> str:
    """Render a field value as text (lists joined by ', '), so metrics never see None or non-strings."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return ", ".join(as_text(v) for v in value)
    return str(value)


def normalize_label(text: Any) -> str:
    """Case-, space- and punctuation-insensitive form of a label ("Very_Negative." -> "very negative")."""
    return " ".join(as_text(text).lower().translate(_PUNCT_TABLE).split())


def squad_normalize(text: Any) -> str:
    """SQuAD answer normalization: lower case, drop punctuation and articles, collapse whitespace."""
    s = as_text(text).lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def exact_match(pred: Any, gold: Any) -> float:
    return 1.0 if squad_normalize(pred) == squad_normalize(gold) else 0.0


def token_f1(pred: Any, gold: Any) -> float:
    """SQuAD token F1 over normalized tokens; two empty answers agree."""
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    if not p or not g:
        return 1.0 if p == g else 0.0
    common = sum((Counter(p) & Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def shorten(text: Any, limit: int = 60) -> str:
    """One-line excerpt for feedback messages."""
    s = " ".join(as_text(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


# --- numbers -----------------------------------------------------------------------------------------------

_NUM = r"[-+−]?(?:\$\s?)?[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?%?|[-−]?\.\d+"
_NUM_RE = re.compile(rf"(?<![\w.])(?:{_NUM})")
_MARKERS = (
    re.compile(r"####\s*(.*)", re.S),
    re.compile(r"\\boxed\{([^{}]*)\}"),
    re.compile(
        r"(?:final answer|answer|result)\s*(?:is|=|:)?\s*[:=]?\s*(.*)",
        re.I | re.S,
    ),
)


def parse_number(token: str) -> Fraction | None:
    """Parse one number token ("$1,200.50", "-3", "3/4", "50%") exactly; None when it is not a number."""
    s = token.replace("−", "-").replace("$", "").replace(",", "").replace("%", "").replace(" ", "")
    if s.startswith("+"):
        s = s[1:]
    if s.count("-") > 1:
        return None
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            return Fraction(Fraction(num), Fraction(den)) if Fraction(den) != 0 else None
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _first_number(text: str) -> Fraction | None:
    for m in _NUM_RE.finditer(text):
        value = parse_number(m.group(0))
        if value is not None:
            return value
    return None


def extract_number(text: Any) -> Fraction | None:
    """The final numeric answer in free text.

    Order: after the last "####", inside \\boxed{}, after the last "answer is/answer:", else the last number.
    So "The answer is 42." -> 42, "#### 7" -> 7, "Answer: -3" -> -3, "$1,200.50" -> 1200.5.
    """
    s = as_text(text)
    for marker in _MARKERS:
        matches = list(marker.finditer(s))
        if matches:
            value = _first_number(matches[-1].group(1))
            if value is not None:
                return value
    last = None
    for m in _NUM_RE.finditer(s):
        value = parse_number(m.group(0))
        if value is not None:
            last = value
    return last


def extract_final_answer(text: Any) -> str:
    """The answer part of a non-numeric final answer ("Reasoning... Answer: yes" -> "yes")."""
    s = as_text(text)
    for marker in (_MARKERS[0], _MARKERS[2]):
        matches = list(marker.finditer(s))
        if matches:
            tail = matches[-1].group(1).strip()
            return tail.splitlines()[0] if tail else ""
    return s.strip()


def numbers_equal(a: Fraction, b: Fraction, rel_tol: float = 1e-6) -> bool:
    if a == b:
        return True
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-9)


def format_number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


# --- overlap metrics ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(pred: Any, reference: Any) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemming)."""
    p, r = as_text(pred), as_text(reference)
    if not p.strip() or not r.strip():
        return 1.0 if p.strip() == r.strip() else 0.0
    return float(_rouge_scorer().score(r, p)["rougeL"].fmeasure)


def chrf(pred: Any, reference: Any) -> float:
    """chrF (sacrebleu defaults: char 6-grams, beta 2) scaled to [0, 1]."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(as_text(pred), [as_text(reference)]).score) / 100.0


def bleu(pred: Any, reference: Any) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing) scaled to [0, 1]."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(as_text(pred), [as_text(reference)]).score) / 100.0
