"""Quickstart: one sentence in, a measured and better prompt out.

Runs offline: the task model is the embedded default, local/smollm2-135m (fetched once on first use). The teacher
writes every row here, so it is local/qwen2.5-coder-0.5b when that model is already pulled
(`promptomatix models pull qwen2.5-coder-0.5b`), else the 135M model itself, whose rows seldom pass the label check.
The sizes are small so it finishes in a few minutes on a laptop CPU; raise them for better prompts.

    python examples/quickstart.py
"""

from __future__ import annotations

from typing import Any


def show(event: Any) -> None:
    """Progress: one line per stage, so a run on a laptop CPU is not a silent wait."""
    if event.stage in ("spec", "data", "baseline", "round", "final", "done", "stopped"):
        print(f"  [{event.stage}] {event.message} (model calls so far: {event.calls})")


def main(clients: dict[str, Any] | None = None, sessions_dir: str | None = None) -> Any:
    """`clients` (fake models) and `sessions_dir` are for the test that runs this script; leave them out."""
    from promptomatix import process_input

    result = process_input(
        human_input="Classify the sentiment of a movie review as positive or negative",
        synthetic_data_size=12,  # the teacher (local/qwen2.5-coder-0.5b when pulled) writes 12 labelled examples
        search_type="quick",
        rounds=1,  # one round of two proposals (quick search: 3 rounds of 4)
        candidates_per_round=2,
        minibatch_size=4,
        clients=clients,
        sessions_dir=sessions_dir,
        progress=show,
    )
    # Upstream's dict keys still work ...
    print("initial prompt score:  ", round(result["metrics"]["initial_prompt_score"], 3))
    print("optimized prompt score:", round(result["metrics"]["optimized_prompt_score"], 3))
    # ... and so do typed attributes.
    print(f"held-out test score: {result.initial_test_score} -> {result.test_score}")
    print(f"session {result.session_id}, {result.metrics.calls} model calls\n")
    print(result.best_prompt)
    return result


if __name__ == "__main__":
    main()
