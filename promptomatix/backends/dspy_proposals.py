"""MIPROv2's instruction proposals made distinct before its trials choose among them.

A small teacher often proposes the instruction it was shown (spam s0 on qwen2.5-coder-0.5b: 3 proposals, two of them
the initial instruction word for word). Optuna then draws "different" indices that are the same program, each a
free cache hit: the search tried fewer programs than it said, and spent 215 calls where the dry run said 275. Here a
repeat is replaced by a variant nobody proposed yet: the initial instruction without one of its lines (then without
one of its sentences), so every index is a program of its own. Kept free of DSPy imports.
"""

from __future__ import annotations

import re


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _variants(initial: str) -> list[str]:
    """The initial instruction without one of its lines, last line first (the task's own line, usually the first,
    goes last); for a one-line instruction, without one of its sentences."""
    lines = [ln for ln in initial.splitlines() if ln.strip()]
    parts, sep = (lines, "\n") if len(lines) > 1 else (re.split(r"(?<=[.!?])\s+", initial.strip()), " ")
    if len(parts) < 2:
        return []
    return [sep.join(p for j, p in enumerate(parts) if j != i) for i in reversed(range(len(parts)))]


def distinct_instructions(texts: list[str]) -> tuple[list[str], int]:
    """`texts` (the initial instruction first) with each repeat replaced by an unproposed variant of the initial
    one, in place; (the list, how many repeats were replaced). Repeats with no variant left are dropped."""
    seen: set[str] = set()
    out: list[str] = []
    repeats = 0
    spare = iter(_variants(texts[0])) if texts else iter(())
    proposed = {_key(t) for t in texts}
    for text in texts:
        if _key(text) in seen:
            repeats += 1
            text = next((v for v in spare if _key(v) not in proposed and _key(v) not in seen), "")
            if not text:
                continue
        seen.add(_key(text))
        out.append(text)
    return out, repeats
