"""MIPROv2's instruction proposals made distinct before its trials choose among them.

A small teacher often proposes the instruction it was shown (spam s0 on qwen2.5-coder-0.5b: 3 proposals, two of them
the initial instruction word for word). Optuna then draws "different" indices that are the same program, each a
free cache hit: the search tried fewer programs than it said, and spent 215 calls where the dry run said 275. A
repeat is asked for once more with another tip (`ParallelProposer._propose_again`); one that repeats again is
dropped, and the run says how many. Nothing is invented in its place: a mechanical variant of the user's
instruction (a line dropped) could win on the length penalty alone by deleting a required line. Kept free of DSPy
imports.
"""

from __future__ import annotations


def _key(text: str) -> str:
    return " ".join(str(text).split())  # whitespace only: "SPAM" and "spam" are different prompts


def repeats(texts: list[str], initial: str) -> list[int]:
    """Indices of the proposals that repeat the predictor's own instruction or an earlier proposal. Index 0 is not
    one: MIPROv2 replaces it by the initial instruction."""
    seen = {_key(initial)}
    out = []
    for j, text in enumerate(texts[1:], start=1):
        if _key(text) in seen:
            out.append(j)
        seen.add(_key(text))
    return out


def other_tip(tip: str | None, tips: dict[str, str]) -> str:
    """The key of the tip after `tip` (a tip's text, or None) in `tips` (DSPy's TIPS) order, for a proposal asked
    for again: another prompt, not only another sample (a greedy or cached teacher answers a prompt the same way)."""
    keys = list(tips)
    current = next((k for k in keys if tips[k] == (tip or "")), keys[0])
    return keys[(keys.index(current) + 1) % len(keys)]


def note(asked_again: int, dropped: int) -> str:
    """The stop reason's words for what the repeats became."""
    if not asked_again:
        return ""
    got = asked_again - dropped
    return (f"{asked_again} of the teacher's instruction proposals repeated an instruction and were asked for again: "
            f"{got} new, {dropped} dropped (repeated again, or the teacher failed)")  # fmt: skip
