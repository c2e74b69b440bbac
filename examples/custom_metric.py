"""A custom metric: score classification with partial credit and say why, instead of plain exact match.

Three labels (positive, negative, mixed). Calling a mixed review positive or negative is a near miss worth 0.5;
swapping positive and negative is worth 0. The metric also returns feedback, which the optimizer's teacher
reads when it rewrites the prompt. It defines quality for the run: candidates are chosen by it and every score
shown (valid, held-out test, the verdict) is its mean, not balanced accuracy. It is passed as `metric="file.py:function"` (the CLI takes the same value as
`--metric`); `promptomatix.register_metric("classification", fn)` registers one for the whole process instead.

    python examples/custom_metric.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TRAIN = [
    {"review": "Loved the actors, hated the ending.", "label": "mixed"},
    {"review": "A joy from start to finish.", "label": "positive"},
    {"review": "Dull, slow and far too long.", "label": "negative"},
    {"review": "Beautiful to look at, but the story goes nowhere.", "label": "mixed"},
    {"review": "The funniest film of the year.", "label": "positive"},
    {"review": "I walked out after forty minutes.", "label": "negative"},
    {"review": "Great first half, messy second half.", "label": "mixed"},
    {"review": "A moving, beautifully acted drama.", "label": "positive"},
    {"review": "Wooden acting and a silly plot.", "label": "negative"},
]


def partial_credit(example: Any, pred: Any) -> tuple[float, str]:
    """1 for the right label, 0.5 for a near miss involving 'mixed', else 0; plus feedback for the teacher."""
    gold = str(example["label"]).strip().lower()
    got = str(pred.get("label") or "").strip().lower()
    if got == gold:
        return 1.0, "correct"
    if "mixed" in (gold, got):
        return 0.5, f"near miss: said {got or 'nothing'}, the review is {gold}"
    return 0.0, f"wrong polarity: said {got or 'nothing'}, the review is {gold}"


def show(event: Any) -> None:
    """Progress: one line per stage, so a run on a laptop CPU is not a silent wait."""
    if event.stage in ("spec", "data", "baseline", "round", "final", "done", "stopped"):
        print(f"  [{event.stage}] {event.message} (model calls so far: {event.calls})")


def main(clients: dict[str, Any] | None = None, sessions_dir: str | None = None) -> Any:
    from promptomatix import process_input

    result = process_input(
        human_input="Classify a movie review as positive, negative or mixed",
        task_type="classification",
        labels=["positive", "negative", "mixed"],
        train_data=TRAIN[:6],
        valid_data=TRAIN[6:],
        test_data=[
            {"review": "Great cast, terrible script.", "label": "mixed"},
            {"review": "An instant classic.", "label": "positive"},
            {"review": "Boring and ugly.", "label": "negative"},
            {"review": "Pretty songs, paper-thin characters.", "label": "mixed"},
        ],
        metric=f"{Path(__file__).resolve()}:partial_credit",
        rounds=1,
        candidates_per_round=2,  # two proposals per round
        minibatch_size=4,
        clients=clients,
        sessions_dir=sessions_dir,
        progress=show,
    )
    m = result.metrics
    print(f"valid score with partial credit: {m.initial_prompt_score_raw:.3f} -> {m.optimized_prompt_score_raw:.3f}")
    if m.initial_test_score is not None and m.optimized_test_score is not None:
        print(
            f"held-out test score with partial credit: {m.initial_test_score.mean:.3f} -> "
            f"{m.optimized_test_score.mean:.3f}"
        )
    print(f"session {result.session_id}:\n{result.best_prompt}")
    return result


if __name__ == "__main__":
    main()
