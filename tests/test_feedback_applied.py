"""Feedback honestly applied: no duplicates stored, an item is applied only when the new version addresses it,
optimizers that never read feedback leave it open; end to end through refine with fake models."""

from __future__ import annotations

import json

from promptomatix.sessions.feedback import attach_feedback
from promptomatix.sessions.feedback_check import applied_feedback, check_addressed, distinct_feedback
from promptomatix.sessions.models import FeedbackItem, Session

OLD = "Classify the review.\nAnswer with exactly one of: positive, negative."


def item(fid: str, comment: str, text: str | None = None) -> FeedbackItem:
    return FeedbackItem(id=fid, comment=comment, text=text)


def test_numbering_a_prompt_addresses_nothing():
    new = "1. Classify the review.\n2. Answer with exactly one of: positive, negative."
    out = check_addressed([item("fb1", "Mention sarcasm."), item("fb2", "vague", "Classify the review.")], OLD, new)
    assert [o.addressed for o in out] == [False, False]
    assert "did not change beyond numbering" in out[0].why


def test_span_items_need_the_quoted_words_changed():
    new = "Decide whether the reviewer liked the film.\nAnswer with exactly one of: positive, negative."
    kept = "Classify the review. Watch for sarcasm.\nAnswer with exactly one of: positive, negative."
    span = item("fb1", "too vague", "Classify the review.")
    assert check_addressed([span], OLD, new)[0].addressed
    out = check_addressed([span], OLD, kept)[0]
    assert not out.addressed and "unchanged" in out.why


def test_general_items_need_the_change_to_take_up_the_comment():
    sarcasm = item("fb1", "Treat sarcastic praise as negative.")
    shorter = item("fb2", "The prompt is too long; make it concise.")
    took_up = OLD + "\nSarcastic praise counts as negative."
    unrelated = OLD + "\nRead every word twice."
    assert check_addressed([sarcasm], OLD, took_up)[0].addressed
    assert not check_addressed([sarcasm], OLD, unrelated)[0].addressed
    long_old = OLD + "\nConsider the whole review, every sentence, and the tone, and the reviewer's final opinion."
    assert check_addressed([shorter], long_old, OLD)[0].addressed
    assert not check_addressed([shorter], OLD, took_up)[0].addressed


def test_generated_duplicates_are_not_stored_twice():
    session = Session(session_id="s1", description="d")
    attach_feedback(session, comment="Treat sarcastic praise as negative.")
    pairs = [("", "Treat sarcastic praise as negative"), ("", "Mention mixed reviews."), ("", "mention mixed reviews")]
    assert distinct_feedback(session, pairs) == [("", "Mention mixed reviews.")]


def test_an_optimizer_that_ignores_feedback_leaves_it_open():
    session = Session(session_id="s1", description="d")
    fb = attach_feedback(session, comment="Treat sarcastic praise as negative.")
    ids, lines = applied_feedback(session, [fb.id], OLD, OLD + "\nSarcastic praise", uses_feedback=False)
    assert ids == [] and "does not read feedback" in lines[0]


def test_refine_marks_only_the_addressed_items_applied(tmp_path):
    from promptomatix.api import process_input
    from promptomatix.followup import refine
    from promptomatix.lm.fake import FakeLM
    from promptomatix.sessions import SessionStore, add_feedback
    from tests.test_reproducible_runs import task, teacher

    def rewriting_teacher(messages):
        text = "\n".join(m["content"] for m in messages)
        if '{"prompt"' in text:  # takes up one comment (sarcasm), ignores the other
            return json.dumps({"prompt": "Say negative if the review is dreadful or sarcastic, otherwise positive."})
        return teacher(messages)

    def clients():
        return {"task": FakeLM(default=task), "teacher": FakeLM(default=rewriting_teacher)}

    store = SessionStore(str(tmp_path))
    common = {"sessions_dir": str(tmp_path), "input_fields": ["review"], "output_fields": ["label"], "seed": 1}
    r = process_input(human_input="Classify the sentiment of a movie review as positive or negative",
                      synthetic_data_size=24, synthetic_batch_size=4, clients=clients(), rounds=0, **common)  # fmt: skip
    a = add_feedback(store, r.session_id, comment="Handle sarcastic reviews.")
    b = add_feedback(store, r.session_id, comment="Mention the acting quality.")
    out = refine(r.session_id, store=store, clients=clients(), rounds=1)
    session = store.load(r.session_id)
    assert out.feedback_applied == [a.id]
    assert session.get_feedback(a.id).status == "applied" and session.get_feedback(b.id).status == "open"
    assert any(f"feedback {b.id}: not addressed" in n for n in out.notes)
