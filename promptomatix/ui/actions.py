"""POST handlers that change a session: feedback (add, edit, resolve, reopen, delete), pick a candidate, delete.

Every change goes through `SessionStore.update` (under the session's lock) with the same feedback functions the
CLI uses. Each handler checks the CSRF token first and answers with a redirect back to the page (POST/redirect/GET).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from promptomatix.errors import ConfigurationError, SessionError
from promptomatix.sessions.feedback import attach_feedback, dismiss_feedback, open_twin
from promptomatix.sessions.feedback_ids import delete_feedback
from promptomatix.sessions.models import Session
from promptomatix.sessions.pick import pick
from promptomatix.ui import views
from promptomatix.ui.pages import _int, session_id, store_of
from promptomatix.ui.security import checked_form

FEEDBACK_ACTIONS = ("edit", "resolve", "reopen", "delete")


def back(request: Request, sid: str, *, version: int | None = None, anchor: str = "") -> Response:
    query = f"?v={version}" if version is not None else ""
    return RedirectResponse(f"/s/{sid}{query}{anchor}", status_code=303)


def _text(form: FormData, name: str, *, required: bool = False) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise HTTPException(400, f"field {name} must be text")
    value = (value or "").strip("\r\n") if value is not None else None
    if required and not (value or "").strip():
        raise HTTPException(400, f"field {name} is empty")
    return value or None


def _refuse_if_busy(request: Request, sid: str, doing: str) -> None:
    why = request.app.state.runs.busy(sid)
    if why:
        raise SessionError(f"cannot {doing}: {why}", hint="wait for the run to finish or cancel it")


def _span(session: Session, form: FormData, version: int | None) -> dict[str, Any]:
    """Start/end/text of a selection. The browser counts UTF-16 units; Python counts code points."""
    start, end, text = _int(_text(form, "start")), _int(_text(form, "end")), form.get("text")
    if start is None and end is None:
        return {}
    if start is None or end is None or not isinstance(text, str):
        raise ConfigurationError("a span needs start, end and the selected text")
    prompt = session.get_version(version).prompt
    lo, hi = views.utf16_to_index(prompt, start), views.utf16_to_index(prompt, end)
    if lo is None or hi is None:
        raise ConfigurationError(f"span {start}:{end} is not inside the prompt; select the text again")
    quoted = prompt[lo:hi]
    if _lines(text) == _lines(quoted):  # a form sends each "\n" or lone "\r" as "\r\n": keep the prompt's own
        text = quoted
    return {"start": lo, "end": hi, "text": text}


def _lines(text: str) -> str:
    """`text` with every line break as "\n" (browsers normalize line breaks in submitted form values)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def add_feedback(request: Request) -> Response:
    sid = session_id(request)
    form = await checked_form(request)
    comment = _text(form, "comment", required=True)
    version = _int(_text(form, "version"))
    added: dict[str, Any] = {}

    def apply(s: Session) -> None:
        span = _span(s, form, version)
        added["item"] = attach_feedback(s, comment=comment or "", version=version, **span)

    store_of(request).update(sid, apply)
    return back(request, sid, version=version, anchor="#feedback")


def _edit(s: Session, fid: str, action: str, comment: str | None, busy: str | None = None) -> None:
    """One feedback action. `busy`: why a run holds the session now; an edit or delete is then refused, as the run
    may be applying that item (a delete failed the run at its end; an edit was recorded as applied unseen)."""
    item = s.get_feedback(fid)
    if busy and action in ("edit", "delete") and item.status == "open":  # a run applies only open items
        raise SessionError(f"cannot {action} feedback {fid} while a run may be applying it: {busy}",
                           hint="wait for the run to finish or cancel it")  # fmt: skip
    if action == "resolve":
        dismiss_feedback(s, [fid])
    elif item.status == "applied":
        raise SessionError(f"feedback {fid} was applied in version {item.applied_in}; it is part of that record")
    elif action == "edit":
        if not (comment or "").strip():
            raise ConfigurationError("feedback comment is empty; say what should change")
        item.comment = (comment or "").strip()
    elif action == "reopen":
        if (twin := open_twin(s, item)) is not None:  # it would be sent to the teacher twice
            raise SessionError(f"feedback {fid} says the same as {twin.id}, which is open", hint=f"edit {twin.id}")
        item.status = "open"
    elif action == "delete":
        delete_feedback(s, item)  # its id is never given to another item


async def change_feedback(request: Request) -> Response:
    sid = session_id(request)
    form = await checked_form(request)
    fid = request.path_params["fid"]
    action = _text(form, "action", required=True)
    if action not in FEEDBACK_ACTIONS:
        raise HTTPException(400, f"unknown feedback action; use one of {', '.join(FEEDBACK_ACTIONS)}")
    comment = _text(form, "comment")
    runs = request.app.state.runs  # asked under the session's lock; a run that starts just then is checked at its end
    store_of(request).update(sid, lambda s: _edit(s, fid, action or "", comment, runs.busy(sid)))
    return back(request, sid, version=_int(_text(form, "version")), anchor="#feedback")


def _pick(s: Session, number: int, cand_id: int) -> tuple[int, bool]:
    """Make candidate `cand_id` of version `number` a new version, without calling any model (as `sessions pick`);
    the version shown next, and whether one was added (not when that prompt already is the latest)."""
    picked = pick(s, cand_id, version=number)
    return picked.version.version, picked.added


async def pick_candidate(request: Request) -> Response:
    sid = session_id(request)
    form = await checked_form(request)
    number, cand_id = _int(_text(form, "version")), _int(_text(form, "candidate"))
    if number is None or cand_id is None:
        raise HTTPException(400, "pick needs a version and a candidate")
    _refuse_if_busy(request, sid, "add a version")
    made: dict[str, tuple[int, bool]] = {}
    store_of(request).update(sid, lambda s: made.setdefault("v", _pick(s, number, cand_id)))
    version, added = made["v"]
    if added:
        return back(request, sid, version=version)
    return RedirectResponse(f"/s/{sid}?v={version}&picked=same", status_code=303)  # the page says why nothing changed


async def delete_session(request: Request) -> Response:
    sid = session_id(request)
    form = await checked_form(request)
    if _text(form, "confirm") != sid:
        raise HTTPException(400, "type the session id to confirm the delete")
    _refuse_if_busy(request, sid, f"delete session {sid}")
    store = store_of(request)
    store.require(sid)  # a missing session is a 404; not `load`: a corrupt session must stay deletable
    store.delete(sid)
    return RedirectResponse("/", status_code=303)
