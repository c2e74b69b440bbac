"""Feedback lifecycle: spans checked against the prompt, general and generated items, open -> applied."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.sessions import (
    FeedbackItem,
    Session,
    SessionStore,
    add_feedback,
    attach_feedback,
    dismiss_feedback,
    list_feedback,
    mark_applied,
    save_feedback,
)

V1 = "You are a helpful assistant. Answer briefly."
V2 = "You are a precise assistant. Answer in one sentence."


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path)


@pytest.fixture
def sid(store) -> str:
    s = store.new_session(raw_input="answer questions")
    s.add_version(V1, backend="initial")
    s.add_version(V2, backend="meta_prompt")
    store.save(s)
    return s.session_id


def test_span_by_offsets_and_by_text(store, sid):
    a = add_feedback(store, sid, comment="too vague", start=10, end=27)
    assert (a.text, a.version, a.kind, a.status, a.source) == (
        "precise assistant",
        2,
        "span",
        "open",
        "human",
    )
    b = add_feedback(store, sid, comment="say 'short'", text="Answer briefly.", version=1)
    assert (b.start, b.end, b.version) == (V1.index("Answer briefly."), len(V1), 1)
    c = add_feedback(store, sid, comment="ok", text="one sentence", start=V2.index("one"), end=V2.index("one") + 12)
    assert c.text == "one sentence"
    loaded = store.load(sid)
    assert [f.id for f in loaded.feedback] == [a.id, b.id, c.id] == ["fb1", "fb2", "fb3"]
    assert loaded.feedback[0] == a


def test_general_and_generated_feedback(store, sid):
    g = add_feedback(store, sid, comment="Outputs are too long overall.")
    assert (g.kind, g.text, g.start, g.version) == ("general", None, None, 2)
    gen = add_feedback(
        store,
        sid,
        comment="Fails on negated questions",
        source="generated",
        details={"example": {"question": "not x?"}, "expected": "no", "got": "yes"},
    )
    loaded = store.load(sid)
    assert list_feedback(loaded, source="generated") == [gen]
    assert loaded.feedback[1].details["expected"] == "no"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"comment": "   "}, ConfigurationError, "comment is empty"),
        ({"comment": "x", "start": 5, "end": 5}, ConfigurationError, "not inside version 2's prompt"),
        ({"comment": "x", "start": 10, "end": 4}, ConfigurationError, "start < end"),
        ({"comment": "x", "start": -1, "end": 4}, ConfigurationError, "not inside"),
        ({"comment": "x", "start": 0, "end": len(V2) + 1}, ConfigurationError, f"<= {len(V2)}"),
        ({"comment": "x", "start": 3}, ConfigurationError, "both start and end"),
        (
            {"comment": "x", "text": "briefly"},
            ConfigurationError,
            "text 'briefly' does not occur in version 2's prompt",
        ),
        ({"comment": "x", "text": "You", "start": 4, "end": 7}, ConfigurationError, "does not match"),
        ({"comment": "x", "text": ""}, ConfigurationError, "empty"),
        ({"comment": "x", "version": 3}, SessionError, r"no version 3 \(it has: 1, 2\)"),
        ({"comment": "x", "source": "robot"}, ConfigurationError, "source"),
    ],
)
def test_validation_errors(store, sid, kwargs, error, match):
    before = store.session_file(sid).read_bytes()
    with pytest.raises(error, match=match):
        add_feedback(store, sid, **kwargs)
    assert store.session_file(sid).read_bytes() == before  # nothing written on a rejected item


def test_feedback_before_any_version(store):
    s = store.new_session(raw_input="x")
    item = add_feedback(store, s.session_id, comment="keep it formal")
    assert item.version is None
    with pytest.raises(ConfigurationError, match="no prompt yet"):
        add_feedback(store, s.session_id, comment="x", text="formal")


def test_lifecycle_open_applied_dismissed(store, sid):
    ids = [add_feedback(store, sid, comment=f"c{i}").id for i in range(4)]

    def new_version(session: Session) -> None:
        session.add_version("v3 prompt", backend="feedback", feedback_applied=ids[:2])
        dismiss_feedback(session, [ids[3]])

    store.update(sid, new_version)
    s = store.load(sid)
    assert [f.id for f in s.open_feedback()] == [ids[2]]
    applied = list_feedback(s, "applied")
    assert [(f.id, f.applied_in) for f in applied] == [(ids[0], 3), (ids[1], 3)]
    assert s.get_version(3).feedback_applied == ids[:2] and s.get_version(3).parent == 2
    assert [f.id for f in list_feedback(s, "dismissed")] == [ids[3]]
    assert [f.id for f in list_feedback(s, version=2)] == ids

    mark_applied(s, [ids[2]], 3)
    assert s.get_feedback(ids[2]).applied_in == 3 and ids[2] in s.get_version(3).feedback_applied
    with pytest.raises(SessionError, match="already applied in version 3"):
        dismiss_feedback(s, [ids[0]])
    with pytest.raises(SessionError, match="no feedback 'fb99'"):
        mark_applied(s, ["fb99"], 3)
    with pytest.raises(SessionError, match="no version 9"):
        mark_applied(s, [ids[2]], 9)
    store.save(s)
    assert list_feedback(store.load(sid), "open") == []


def test_cannot_apply_in_an_earlier_version(store, sid):
    item = add_feedback(store, sid, comment="x", version=2)
    s = store.load(sid)
    with pytest.raises(SessionError, match="earlier version 1"):
        mark_applied(s, [item.id], 1)


def test_batch_attach_inside_update(store, sid):
    store.update(sid, lambda s: [attach_feedback(s, comment=f"g{i}", source="generated") for i in range(3)])
    assert [f.comment for f in store.load(sid).feedback] == ["g0", "g1", "g2"]


def test_feedback_item_model_rules():
    with pytest.raises(ValidationError):
        FeedbackItem(id="f", comment="x", start=1)
    with pytest.raises(ValidationError):
        FeedbackItem(id="f", comment="x", status="applied")
    with pytest.raises(ValidationError):
        FeedbackItem(id="f", comment="x", unknown=1)
    with pytest.raises(ValidationError):
        Session(session_id="abc", feedback=[FeedbackItem(id="f", comment="x", version=4)])


def test_upstream_save_feedback_shape(store, sid):
    start = V2.index("precise")
    out = save_feedback("precise", start, start + 7, "be more specific", prompt_id=sid, store=store)
    assert set(out) == {"id", "text", "start_offset", "end_offset", "feedback", "prompt_id", "created_at"}
    assert (out["text"], out["start_offset"], out["feedback"], out["prompt_id"]) == (
        "precise",
        start,
        "be more specific",
        sid,
    )
    # Offsets counted elsewhere (upstream's r["result"]) are repaired from the text; a quote that is in no prompt of
    # the session, or offsets that cannot hold the quote, are refused (review 24, F10).
    save_feedback("one sentence", 0, 12, "fine", prompt_id=sid, store=store)
    items = store.load(sid).feedback
    assert (items[1].start, items[1].text) == (V2.index("one sentence"), "one sentence")
    with pytest.raises(ConfigurationError, match="does not occur in session"):
        save_feedback("not in the prompt", 0, 17, "hmm", prompt_id=sid, store=store)
    with pytest.raises(ConfigurationError, match="cannot hold the quoted text"):
        save_feedback("one sentence", 0, 3, "fine", prompt_id=sid, store=store)
    assert len(store.load(sid).feedback) == 2
    with pytest.raises(ConfigurationError):
        save_feedback("precise", start, start + 7, "", prompt_id=sid, store=store)


def test_upstream_save_feedback_uses_env_store(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "env"))
    store = SessionStore()
    s = store.new_session(raw_input="x")
    s.add_version(V1, backend="initial")
    store.save(s)
    save_feedback("helpful", V1.index("helpful"), V1.index("helpful") + 7, "meh", prompt_id=s.session_id)
    assert store.load(s.session_id).feedback[0].text == "helpful"


def test_the_same_open_feedback_given_again_is_not_stored_twice(store, sid, tmp_path, capsys):
    """A notebook cell re-run called save_feedback three times and stored the quote and comment three times; each was
    then sent to the teacher. The same open item is returned instead; once applied, the same words are new feedback."""
    start = V2.index("precise")
    ids = {save_feedback("precise", start, start + 7, "be more specific", prompt_id=sid, store=store)["id"]
           for _ in range(3)}  # fmt: skip
    assert ids == {"fb1"} and len(store.load(sid).feedback) == 1
    assert add_feedback(store, sid, comment="be more specific ", text="precise").id == "fb1"
    assert add_feedback(store, sid, comment="be more specific").id == "fb2"  # on the whole prompt: another item
    assert add_feedback(store, sid, comment="other words", text="precise").id == "fb3"
    store.update(sid, lambda s: mark_applied(s, ["fb1"], 2))
    assert add_feedback(store, sid, comment="be more specific", text="precise").id == "fb4"

    from tests.cli_run import run_main

    code, out, _ = run_main(capsys, "feedback", "add", sid, "-c", "other words", "-t", "precise",
                         "--sessions-dir", str(store.root))  # fmt: skip
    assert code == 0 and "already recorded as fb3" in out and len(store.load(sid).feedback) == 4


def test_same_words_on_different_quotes_are_different_items(store, sid):
    """A quote found only in r["result"] (a demo's lines) is stored as general feedback quoting it in `details`;
    the duplicate check ignored them, so a comment on Example 2 was merged into Example 1's (review 29, #3)."""
    one = add_feedback(store, sid, comment="drop this example", details={"quoted": "Example 1:"})
    two = add_feedback(store, sid, comment="drop this example", details={"quoted": "Example 2:"})
    general = add_feedback(store, sid, comment="drop this example")
    again = add_feedback(store, sid, comment="drop this example", details={"quoted": "Example 2:"})
    assert [one.id, two.id, general.id, again.id] == ["fb1", "fb2", "fb3", "fb2"]


def test_reopening_an_item_the_same_as_an_open_one_is_refused(store, sid):
    """Dismissed, given again (a new item), then reopened in the UI: two open items said the same and both went to
    the teacher (review 29, #9)."""
    from promptomatix.ui.actions import _edit

    s = store.load(sid)
    a = attach_feedback(s, comment="too vague")
    dismiss_feedback(s, [a.id])
    b = attach_feedback(s, comment="too vague")
    assert b.id != a.id
    with pytest.raises(SessionError, match=f"says the same as {b.id}, which is open"):
        _edit(s, a.id, "reopen", None)
    dismiss_feedback(s, [b.id])
    _edit(s, a.id, "reopen", None)  # nothing open says the same now
    assert [f.id for f in s.feedback if f.status == "open"] == [a.id]
