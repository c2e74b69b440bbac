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
    notes = [c.get("note") or "" for c in version.candidates]
    assert any("no raw gain and" in n for n in notes), "the candidate with demos was not refused at the confirmation"
