"""Pure parsing and sampling for the benchmark data: bytes in, examples out; seeded, stratified splits."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from benchmarks.common import SPLITS, DataError, Example, Sizes

# --------------------------------------------------------------------------------------------------
# Sizes and sampling
# --------------------------------------------------------------------------------------------------


def normalize_sizes(sizes: Mapping[str, int] | Sequence[int] | None, default: Mapping[str, int]) -> Sizes:
    """``None`` -> default; ``(train, valid, test)``; or a mapping (missing splits take the default)."""
    if sizes is None:
        out = dict(default)
    elif isinstance(sizes, Mapping):
        unknown = set(sizes) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; expected {SPLITS}")
        out = {s: sizes.get(s, default[s]) for s in SPLITS}
    else:
        vals = list(sizes)
        if len(vals) != 3:
            raise ValueError(f"sizes needs 3 numbers (train, valid, test), got {vals}")
        out = dict(zip(SPLITS, vals, strict=True))
    out = {s: int(out[s]) for s in SPLITS}
    if any(v < 0 for v in out.values()):
        raise ValueError(f"sizes must be >= 0: {out}")
    return out


def _quotas(n: int, available: Mapping[str, int], rng: random.Random, balanced: bool) -> dict[str, int]:
    """Per-group counts summing to ``n``: equal per group (``balanced``) or proportional to availability."""
    groups = sorted(available)
    if n > sum(available.values()):
        raise DataError(f"need {n} items but only {sum(available.values())} remain")
    if balanced:
        base = {g: 0 for g in groups}
        left = n
        # Fill equally, capped by availability; spread the remainder over random groups with room.
        while left > 0:
            room = [g for g in groups if base[g] < available[g]]
            share = left // len(room)
            if share == 0:
                for g in rng.sample(room, left):
                    base[g] += 1
                break
            for g in room:
                take = min(share, available[g] - base[g])
                base[g] += take
                left -= take
        return base
    total = sum(available.values())
    exact = {g: n * available[g] / total for g in groups}
    base = {g: int(exact[g]) for g in groups}
    order = sorted(groups, key=lambda g: (-(exact[g] - base[g]), g))
    for g in order[: n - sum(base.values())]:
        base[g] += 1
    return base


def stratified_split(
    items: Sequence[Example],
    key: str | Callable[[Example], str],
    sizes: Mapping[str, int],
    rng: random.Random,
    *,
    balanced: bool = True,
) -> dict[str, list[Example]]:
    """Disjoint train/valid/test samples stratified by ``key`` (a field name or a function).

    ``balanced=True`` gives every label the same count (the remainder goes to random labels), so a
    constant-label answer scores chance; ``balanced=False`` keeps the pool's label proportions.
    Test is drawn first, then valid, then train. Each split is shuffled so labels interleave.
    """
    keyf = (lambda ex: ex[key]) if isinstance(key, str) else key
    pools: dict[str, list[Example]] = defaultdict(list)
    for ex in items:
        pools[keyf(ex)].append(ex)
    for g in sorted(pools):
        rng.shuffle(pools[g])
    out: dict[str, list[Example]] = {}
    for split in ("test", "valid", "train"):
        quotas = _quotas(sizes[split], {g: len(p) for g, p in pools.items()}, rng, balanced)
        chosen: list[Example] = []
        for g in sorted(quotas):
            chosen.extend(pools[g][: quotas[g]])
            pools[g] = pools[g][quotas[g] :]
        rng.shuffle(chosen)
        out[split] = chosen
    return {s: out[s] for s in SPLITS}


def random_split(items: Sequence[Example], sizes: Mapping[str, int], rng: random.Random) -> dict[str, list[Example]]:
    """Disjoint uniform samples: test first, then valid, then train."""
    need = sum(sizes[s] for s in SPLITS)
    if need > len(items):
        raise DataError(f"need {need} items but the pool has {len(items)}")
    pool = list(items)
    rng.shuffle(pool)
    out, i = {}, 0
    for split in ("test", "valid", "train"):
        out[split] = pool[i : i + sizes[split]]
        i += sizes[split]
    return {s: out[s] for s in SPLITS}


def dedupe(items: Iterable[Example], key: str, label: str | None = None) -> list[Example]:
    """Keep the first item per ``key`` value; with ``label``, drop keys seen with conflicting labels."""
    first: dict[Any, Example] = {}
    conflicted: set[Any] = set()
    for ex in items:
        k = ex[key]
        if k in first:
            if label is not None and first[k][label] != ex[label]:
                conflicted.add(k)
            continue
        first[k] = ex
    return [ex for k, ex in first.items() if k not in conflicted]


# --------------------------------------------------------------------------------------------------
# Parsers (pure: bytes/str/dict in, examples out)
# --------------------------------------------------------------------------------------------------


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse_sentiment_tsv(data: bytes | str, *, min_abs_score: float = 1.0) -> list[Example]:
    """Hutto & Gilbert ground-truth TSV (``id<TAB>score<TAB>text``, score in -4..4, header row).

    Binarize by sign; drop |score| < ``min_abs_score`` (the ambiguous middle); ```` '' ```` -> ``"``;
    dedupe texts and drop texts that occur with both labels.
    """
    out: list[Example] = []
    for line in _decode(data).splitlines():
        parts = line.rstrip("\r").split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            score = float(parts[1])
        except ValueError:  # header row
            continue
        text = " ".join(parts[2].replace("''", '"').split())
        if not text or abs(score) < min_abs_score:
            continue
        out.append({"text": text, "sentiment": "positive" if score > 0 else "negative"})
    return dedupe(out, "text", "sentiment")


TREC_COARSE = {
    "ABBR": "abbreviation",
    "DESC": "description",
    "ENTY": "entity",
    "HUM": "human",
    "LOC": "location",
    "NUM": "number",
}

_DETOK = [
    (re.compile(r"\s+([?.!,;:])"), r"\1"),
    (re.compile(r"\s+(n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"),
    (re.compile(r"``\s*"), '"'),
    (re.compile(r"\s*''"), '"'),
]


def detokenize(text: str) -> str:
    """Undo PTB-style spacing (``Russia ?`` -> ``Russia?``, ``does n't`` -> ``doesn't``); conservative."""
    text = " ".join(text.split())
    for pat, rep in _DETOK:
        text = pat.sub(rep, text)
    return text


def parse_trec_lines(data: bytes | str) -> list[Example]:
    """``COARSE:fine question`` lines -> ``{"question", "category"}``, coarse label as a readable name.

    Deduped by question text (the file repeats lines); a question seen with two coarse labels is dropped.
    """
    out: list[Example] = []
    for line in _decode(data).splitlines():
        line = line.strip()
        if not line or ":" not in line:
            continue
        label, _, rest = line.partition(":")
        fine, _, question = rest.partition(" ")
        if label not in TREC_COARSE or not fine or not question.strip():
            continue
        out.append({"question": detokenize(question), "category": TREC_COARSE[label]})
    return dedupe(out, "question", "category")


def _bigbench_examples(task: Mapping[str, Any] | bytes | str) -> list[Mapping[str, Any]]:
    if isinstance(task, (bytes, str)):
        task = json.loads(_decode(task))
    return list(task.get("examples", []))


def _first_target(ex: Mapping[str, Any]) -> str | None:
    target = ex.get("target")
    if isinstance(target, list):
        target = target[0] if target else None
    if target is None and isinstance(ex.get("target_scores"), Mapping):
        best = [k for k, v in ex["target_scores"].items() if v == max(ex["target_scores"].values())]
        target = best[0] if best else None
    return None if target is None else str(target).strip()


_ARITH_OP = re.compile(r"\b(plus|minus|times|divided by)\b")


def parse_bigbench_arithmetic(task: Mapping[str, Any] | bytes | str) -> list[Example]:
    """BIG-bench ``arithmetic/*`` task.json (``"What is 80 plus 29?"`` -> ``"109"``).

    Adds an ``operation`` field (plus/minus/...) used for stratification; the builder drops it.
    """
    out = []
    for ex in _bigbench_examples(task):
        question = str(ex.get("input", "")).strip()
        answer = _first_target(ex)
        m = _ARITH_OP.search(question)
        if question and answer is not None and m:
            out.append({"question": question, "answer": answer, "operation": m.group(1)})
    return dedupe(out, "question", "answer")


def truncate_text(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars``, at the last line break, else sentence end, else space."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n", ". ", " "):
        cut = head.rfind(sep)
        if cut >= max_chars // 2:
            return head[: cut + (1 if sep == ". " else 0)].rstrip()
    return head.rstrip()


def parse_bigbench_summaries(task: Mapping[str, Any] | bytes | str, *, max_doc_chars: int | None) -> list[Example]:
    """BIG-bench ``gem/xsum`` task.json -> ``{"document", "summary"}``; documents truncated to ``max_doc_chars``."""
    out = []
    for ex in _bigbench_examples(task):
        doc = str(ex.get("input", "")).strip()
        summary = _first_target(ex)
        if not doc or not summary:
            continue
        if max_doc_chars:
            doc = truncate_text(doc, max_doc_chars)
        out.append({"document": doc, "summary": summary})
    return dedupe(out, "document")


def parse_squad(data: Mapping[str, Any] | bytes | str, *, max_context_chars: int | None = None) -> list[list[Example]]:
    """SQuAD v1.1 JSON -> one list of examples per paragraph (``context, question, answer, answers``).

    ``answers`` keeps the distinct gold answers in order; ``answer`` is the first. Paragraphs longer than
    ``max_context_chars`` are skipped (not truncated: that could cut the answer out).
    """
    if isinstance(data, (bytes, str)):
        data = json.loads(_decode(data))
    paragraphs: list[list[Example]] = []
    for article in data.get("data", []):
        for para in article.get("paragraphs", []):
            context = " ".join(str(para.get("context", "")).split())
            if not context or (max_context_chars and len(context) > max_context_chars):
                continue
            group = []
            for qa in para.get("qas", []):
                answers = list(dict.fromkeys(a["text"].strip() for a in qa.get("answers", []) if a["text"].strip()))
                question = " ".join(str(qa.get("question", "")).split())
                if question and answers:
                    group.append({"context": context, "question": question, "answer": answers[0], "answers": answers})
            if group:
                paragraphs.append(group)
    return paragraphs
