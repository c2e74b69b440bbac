"""Optimize on your own data: a CSV with an input column and a label column (examples/data/reviews.csv).

The column names become the prompt's fields, the labels are discovered from the data, and no synthetic data
is generated (the CSV has enough rows). A held-out part of the CSV is scored only in the final report.

    python examples/own_csv.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "reviews.csv"


def show(event: Any) -> None:
    """Progress: one line per stage, so a run on a laptop CPU is not a silent wait."""
    if event.stage in ("spec", "data", "baseline", "round", "final", "done", "stopped"):
        print(f"  [{event.stage}] {event.message} (model calls so far: {event.calls})")


def main(clients: dict[str, Any] | None = None, sessions_dir: str | None = None) -> Any:
    from promptomatix import process_input

    result = process_input(
        human_input="Decide whether a short movie review is positive or negative",
        data=str(DATA),  # CSV, JSON or JSONL; upstream's load_data_local/local_train_data_path work too
        input_fields=["review"],
        output_fields=["label"],
        synthetic_data_size=0,  # use only the rows in the file
        valid_data_size=6,
        test_data_size=8,  # held out: scored only in the final report
        rounds=1,
        candidates_per_round=2,  # two proposals per round
        minibatch_size=4,
        clients=clients,
        sessions_dir=sessions_dir,
        progress=show,
    )
    report = result.data_report
    print("rows per split:", report["split_sizes"], "| labels:", result.labels)
    m = result.metrics
    for name, score in (("initial", m.initial_test_score), ("optimized", m.optimized_test_score)):
        if score is not None:
            print(
                f"{name:>9} prompt on {score.n} held-out rows: {score.mean:.3f} [{score.ci_low:.2f}, {score.ci_high:.2f}]"
            )
    print(f"\nsession {result.session_id}:\n{result.best_prompt}")
    return result


if __name__ == "__main__":
    main()
