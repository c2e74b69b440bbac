"""What the report says about teacher-written rows: how many were generated and kept, why others were dropped,
whether their labels can be trusted, and what a synthetic held-out test limits.

A run whose data the checks call noise stops here, before any optimization is paid for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from promptomatix.errors import DataError

if TYPE_CHECKING:
    from promptomatix.data.builder import SyntheticSummary

#: Below this many relabelled rows the agreement rate says too little to stop a run on.
MIN_CHECKED = 8
#: The blind relabel must agree this far above chance (0 = a coin flip, 1 = always): 0.25 is 62.5% for two labels.
MIN_ABOVE_CHANCE = 0.25
STRONGER_LOCAL = "local/qwen2.5-coder-0.5b"


def stronger_teacher_help(teacher_model: str | None = None) -> str:
    """What to pass for a real verdict; never the teacher that wrote the rows (the README's first run suggested
    local/qwen2.5-coder-0.5b when it was the teacher already)."""
    other = "a provider model such as openai/gpt-4o-mini" if teacher_model == STRONGER_LOCAL else STRONGER_LOCAL
    return f"pass --data FILE with labelled rows, or a stronger --teacher-model (e.g. {other})"


def synthetic_account(s: SyntheticSummary) -> str:
    """One line: generated, kept, dropped by reason, relabel agreement."""
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(s.rejected.items(), key=lambda kv: -kv[1]))
    line = f"synthetic data: the teacher wrote {s.generated} rows, {s.accepted} kept"
    if dropped:
        line += f"; dropped: {dropped}"
    if s.checked:
        line += f"; a blind relabel by the teacher agreed on {s.agreed} of {s.checked} labels"
    if s.unchecked:
        line += f"; {s.unchecked} kept unchecked (the relabel gave no label)"
    return line


def min_agreement(n_labels: int) -> float:
    chance = 1.0 / max(2, n_labels)
    return chance + MIN_ABOVE_CHANCE * (1.0 - chance)


def too_noisy(checked: int, agreed: int, n_labels: int) -> bool:
    return checked >= MIN_CHECKED and agreed / checked < min_agreement(n_labels)


def check_agreement(s: SyntheticSummary, n_labels: int = 2, teacher_model: str | None = None) -> None:
    """Stop before optimizing when the teacher's labels and its own blind relabel agree barely above chance:
    the kept rows would then be the lucky agreements, and every score on them close to noise."""
    if not too_noisy(s.checked, s.agreed, n_labels):
        return
    rate = s.agreed / s.checked
    need = min_agreement(n_labels)
    if rate < need:
        raise DataError(
            f"the synthetic data is too noisy to optimize on: a blind relabel agreed with the teacher's labels on "
            f"{s.agreed} of {s.checked} rows ({rate:.0%}; {need:.0%} needed, chance is {1 / max(2, n_labels):.0%}); "
            f"the teacher wrote {s.generated} rows, {s.accepted} kept",
            hint=stronger_teacher_help(teacher_model),
        )


def synthetic_test_note(
    test_sources: dict[str, int], s: SyntheticSummary | None, teacher_model: str | None = None
) -> str | None:
    """Say plainly when the held-out test is teacher-written, and what that limits."""
    n = test_sources.get("synthetic", 0)
    if not n:
        return None
    real = sum(v for k, v in test_sources.items() if k != "synthetic")
    share = f"{n} of the {n + real} held-out test rows are" if real else f"the held-out test is {n} rows,"
    checked = " whose labels the same teacher checked blind" if s is not None and s.checked else ""
    return (
        f"{share} written by the teacher{checked}: the verdict measures agreement with the teacher's idea of the "
        "task, not with real data (and when the teacher is also the task model, rows it gets wrong were dropped, so "
        f"scores run high); for a real verdict, {stronger_teacher_help(teacher_model)}"
    )
