"""At equal raw quality the prompt with less to read wins (README §Metrics). The λ penalty counts instruction words
only, so a candidate of 6 instruction words and 4 demos (77 words read) beat a 22-word initial prompt "for its
length" at equal raw quality: the report said both "kept for its length" and "55 words longer" (review 24, F9)."""

from __future__ import annotations

from pathlib import Path

from promptomatix.api import load_session, process_input
from promptomatix.cli.fakes import clients_from_script

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "reviews.csv"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}], [["never get back"], {"label": "negative"}]],
             "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Say negative if the review complains."}]], "default": {}},
}  # fmt: skip


def test_a_tie_on_raw_quality_never_chooses_a_prompt_with_more_to_read(tmp_path):
    r = process_input(raw_input="Classify the sentiment of a movie review", data=str(DATA), input_fields=["review"],
                      output_fields=["label"], sessions_dir=str(tmp_path), clients=clients_from_script(SCRIPT))  # fmt: skip
    m = r.metrics
    assert m.optimized_prompt_score_raw == m.initial_prompt_score_raw  # a tie on raw quality
    assert len(r.best_prompt.split()) <= len(r.initial_prompt.split()), r.best_prompt
    assert "words longer" not in (r.verdict.length_note() or "")
    version = load_session(r.session_id, sessions_dir=str(tmp_path)).versions[-1]
    chosen = next(c for c in version.candidates if c["prompt"] == r.best_prompt)
    assert not chosen.get("n_demos")


def test_the_confirmation_refuses_a_finalist_with_no_raw_gain_and_more_to_read():
    """The rewrite with demos ties the rewrite and the initial prompt on raw quality and wins on the λ penalty
    (it counts instruction words only): the confirmation refuses it for the words its demos add."""
    import json

    from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
    from promptomatix.backends.prompt import PromptCandidate
    from tests.backend_fakes import GuardedData
    from tests.test_meta_backend import make_ctx, rows

    ctx, *_ = make_ctx(json.dumps({"prompt": "Say negative if the review complains."}))
    ctx.metrics.lambda_penalty = 0.01
    s = MetaSettings(strategies=["rewrite_from_failures", "add_demos"], rounds=2, candidates_per_round=1, top_k=3,
                     confirm_top_k=2, patience=9)  # fmt: skip
    initial = ("Read the movie review very carefully and think about what the writer means before you answer.\n"
               "Say negative if the review complains.")  # fmt: skip
    res = MetaPromptOptimizer(s).compile(ctx, PromptCandidate(instructions=initial), GuardedData(rows(12), rows(12, 40)))
    notes = {c.origin: c.note for c in res.candidates}
    assert "no raw gain and" in notes["add_demos"] and "more words to read (demos included)" in notes["add_demos"]
    assert not res.demos
