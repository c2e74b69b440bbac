"""Review 20, findings 1, 2 and 5: feedback changed during a run, feedback ids reused after a delete, and span
feedback on an older version counted as addressed by a refine that never had its quoted words."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient

from promptomatix.followup import feedback_text, refine, resumed_state
from promptomatix.sessions import SessionStore, add_feedback
from promptomatix.sessions.feedback import attach_feedback
from promptomatix.sessions.feedback_check import check_addressed
from promptomatix.sessions.models import FeedbackItem, Session
from promptomatix.ui.actions import _edit
from promptomatix.ui.app import create_app
from promptomatix.ui.security import cookie_name, csrf_for
from tests.ui_support import GENERATED, TOKEN, fake_clients, make_session

CSRF = csrf_for(TOKEN)
EDITED = "Always answer positive for sarcastic reviews."


@pytest.fixture
def store(tmp_path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def client(store):
    with TestClient(create_app(store, token=TOKEN), follow_redirects=False) as c:
        c.cookies.set(cookie_name(TOKEN), TOKEN)
        yield c


def act(client: TestClient, sid: str, fid: str, action: str, **extra: str) -> Any:
    return client.post(f"/s/{sid}/feedback/{fid}", data={"csrf": CSRF, "action": action, **extra})


def items(store: SessionStore, sid: str) -> list[tuple[str, str, str]]:
    return [(f.id, f.comment, f.status) for f in store.load(sid).feedback]


# --- 1: feedback changed while a run applies it ----------------------------------------------------------------


def test_the_page_refuses_to_edit_or_delete_feedback_while_a_run_holds_the_session(client, store):
    sid = make_session(store)
    add_feedback(store, sid, comment=GENERATED)
    with store.run_lock(sid, command="refine"):
        edit = act(client, sid, "fb1", "edit", comment=EDITED)
        assert edit.status_code == 409
        assert "cannot edit feedback fb1 while a run may be applying it" in edit.text
        assert "`refine` is running" in edit.text
        delete = act(client, sid, "fb1", "delete")
        assert delete.status_code == 409 and "cannot delete feedback fb1" in delete.text
        assert items(store, sid) == [("fb1", GENERATED, "open")]
        add = client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": "a new comment"})
        assert add.status_code == 303  # adding is still fine: the run does not read items added after its start
    assert act(client, sid, "fb1", "edit", comment=EDITED).status_code == 303  # the run is over: allowed again
    assert items(store, sid)[0] == ("fb1", EDITED, "open")


def _refine_changing_fb1(store: SessionStore, sid: str, action: str, comment: str | None = None) -> Any:
    """A refine during which fb1 is edited or deleted as the page did before it checked the run lock (or as a change
    saved just as the run starts still can): the first teacher call of the run makes the change."""
    clients = fake_clients()
    teacher, done, guard = clients["teacher"], [], threading.Lock()
    answer = teacher.default

    def changing(messages: list[dict[str, str]]) -> str:
        with guard:
            if not done:
                done.append(True)
                store.update(sid, lambda s: _edit(s, "fb1", action, comment))
        return answer(messages)

    teacher.default = changing
    out = refine(sid, store=store, clients=clients)
    assert done, "the teacher was never called"
    return out


def test_feedback_deleted_during_a_refine_does_not_fail_the_run(store):
    sid = make_session(store)
    add_feedback(store, sid, comment=GENERATED)
    out = _refine_changing_fb1(store, sid, "delete")
    assert out.version == 2 and out.feedback_applied == []
    assert any("feedback fb1: not applied (it was deleted while the run was using it)" in n for n in out.notes)
    assert store.load(sid).latest_version().version == 2


def test_feedback_edited_during_a_refine_is_not_recorded_as_applied(store):
    sid = make_session(store)
    add_feedback(store, sid, comment=GENERATED)
    out = _refine_changing_fb1(store, sid, "edit", EDITED)
    assert out.version == 2 and out.feedback_applied == []
    assert items(store, sid) == [("fb1", EDITED, "open")]
    assert store.load(sid).get_version(2).feedback_applied == []
    assert any("feedback fb1: left open (it was edited while the run was using it" in n for n in out.notes)


# --- 2: ids never reused -----------------------------------------------------------------------------------------


def test_a_deleted_items_id_is_never_given_again(client, store):
    sid = make_session(store)
    for comment in ("first one", "second one"):
        client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": comment})
    assert act(client, sid, "fb2", "delete").status_code == 303
    client.post(f"/s/{sid}/feedback", data={"csrf": CSRF, "comment": "third one"})
    assert [i for i, _, _ in items(store, sid)] == ["fb1", "fb3"]
    for fid in ("fb1", "fb3"):
        assert act(client, sid, fid, "delete").status_code == 303
    assert add_feedback(store, sid, comment="fourth one").id == "fb4"  # the CLI's add too, with nothing left
    assert [e["id"] for e in store.load(sid).events if e["kind"] == "feedback_deleted"] == ["fb2", "fb1", "fb3"]


def test_ids_a_session_saved_before_the_counter_still_names_are_not_given_again():
    """An older session (no counter) whose deleted fb1 is still named by its interrupted run's checkpoint."""
    session = Session(session_id="s1", progress={"human_feedback": [GENERATED], "feedback_ids": ["fb1"]})
    assert attach_feedback(session, comment="Treat sarcastic praise as negative.").id == "fb2"
    session = Session(session_id="s2", events=[{"at": "2026-01-01T00:00:00", "kind": "feedback_deleted", "id": "fb7"}])
    assert session.next_feedback_id() == "fb8"


def test_resume_leaves_out_an_item_that_no_longer_reads_as_the_run_was_given_it(store):
    sid = make_session(store)
    add_feedback(store, sid, comment="Treat sarcastic praise as negative.")  # fb1, not what the run was given
    add_feedback(store, sid, comment="Mention mixed reviews.")  # fb2, unchanged
    progress = {"human_feedback": [GENERATED, "Mention mixed reviews."], "feedback_ids": ["fb1", "fb2"],
                "parent_version": 1}  # fmt: skip
    store.update(sid, lambda s: setattr(s, "progress", progress))
    state = resumed_state(store.load(sid))
    assert state.feedback_ids == ["fb2"] and state.human_feedback == ["Mention mixed reviews."]
    assert any("feedback fb1 left out: it reads differently from when the run stopped" in n for n in state.notes)


# --- 5: a quote the refined prompt did not have --------------------------------------------------------------


def test_a_quote_missing_from_the_refined_prompt_is_not_addressed_by_the_refine():
    old = "Say negative if the review complains, otherwise say positive."
    new = "Label the review: negative for complaints, else positive."
    span = FeedbackItem(id="fb1", comment="zzz qqq", text="criticizes", start=0, end=10, version=1)
    out = check_addressed([span], old, new)[0]
    assert not out.addressed
    assert "its quoted words were not in the refined prompt" in out.why
    taken_up = FeedbackItem(id="fb2", comment="Mention sarcasm.", text="criticizes", start=0, end=10, version=1)
    out = check_addressed([taken_up], old, new + " Sarcasm counts as negative.")[0]
    assert out.addressed and "not in the refined prompt; the new wording takes up sarcas" in out.why
    assert feedback_text(span, old) == (
        'On "criticizes" (quoted from version 1; the prompt being refined no longer has it): zzz qqq'
    )
    assert feedback_text(span, "It criticizes.") == feedback_text(span) == 'On "criticizes": zzz qqq'


def test_a_refine_reports_a_stale_quote_honestly(store):
    """v1 has "criticizes", v2 (the latest) does not; span feedback on v1's word stays open after a refine."""
    sid = make_session(store)
    assert "criticizes" in store.load(sid).get_version(1).prompt
    store.update(sid, lambda s: s.add_version("Label the review as positive or negative.", backend="meta"))
    add_feedback(store, sid, version=1, text="criticizes", comment="zzz qqq")
    clients, seen = fake_clients(), []

    def teacher(messages: list[dict[str, str]]) -> str:
        text = "\n".join(m["content"] for m in messages)
        if '{"prompt"' in text:
            seen.append(text)
            return json.dumps({"prompt": "Say negative if the review complains, else positive."})
        return "{}"

    clients["teacher"].default = teacher
    out = refine(sid, store=store, clients=clients)
    assert out.version == 3 and out.feedback_applied == []
    assert store.load(sid).get_feedback("fb1").status == "open"
    assert any("feedback fb1: not addressed (its quoted words were not in the refined prompt" in n for n in out.notes)
    assert any("quoted from version 1; the prompt being refined no longer has it" in t for t in seen)
