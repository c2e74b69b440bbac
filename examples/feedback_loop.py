"""The feedback loop: optimize, comment on part of the prompt, let an LLM critic add its own comments, then
re-optimize from the latest version with all open feedback. Each step is a new version in the same session.

The CLI equivalent:
    promptomatix optimize "..." ; promptomatix feedback add ID --text "..." --comment "..."
    promptomatix feedback generate ID ; promptomatix refine ID ; promptomatix sessions show ID

    python examples/feedback_loop.py
"""

from __future__ import annotations

from typing import Any


def show(event: Any) -> None:
    """Progress: one line per stage, so a run on a laptop CPU is not a silent wait."""
    if event.stage in ("spec", "data", "baseline", "round", "final", "done", "stopped"):
        print(f"  [{event.stage}] {event.message} (model calls so far: {event.calls})")


def main(clients: dict[str, Any] | None = None, sessions_dir: str | None = None) -> Any:
    from promptomatix import generate_feedback, load_session, optimize_with_feedback, process_input, save_feedback

    first = process_input(
        human_input="Classify the sentiment of a movie review as positive or negative",
        synthetic_data_size=12,
        rounds=1,
        candidates_per_round=2,  # two proposals per round
        minibatch_size=4,
        clients=clients,
        sessions_dir=sessions_dir,
        progress=show,
    )
    sid = first.session_id
    print(f"session {sid}\nv{first.version}: test {first.test_score}\n{first.best_prompt}\n")

    # Human feedback on a span of the prompt (offsets into the prompt as the model sees it; upstream's signature).
    quote = first.instructions.strip().splitlines()[0]
    start = first.best_prompt.index(quote)
    save_feedback(
        text=quote,
        start_offset=start,
        end_offset=start + len(quote),
        feedback="Say that sarcastic praise is negative.",
        prompt_id=sid,
        sessions_dir=sessions_dir,  # None: ./sessions or $PROMPTOMATIX_SESSIONS_DIR
    )
    # Feedback written by the teacher model from the prompt's failures on validation examples.
    critique = generate_feedback(sid, clients=clients, sessions_dir=sessions_dir)
    print(f"the critic added {len(critique['feedback_items'])} feedback items")

    second = optimize_with_feedback(sid, clients=clients, sessions_dir=sessions_dir, progress=show)
    print(f"v{second.version} (from v{first.version}) applied {second.feedback_applied}: test {second.test_score}")
    print(second.best_prompt)
    session = load_session(sid, sessions_dir=sessions_dir)
    print("feedback:", [(f.id, f.source, f.status) for f in session.feedback])
    return second


if __name__ == "__main__":
    main()
