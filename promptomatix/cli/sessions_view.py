"""Plain-text pieces of `sessions show`/`list`/`export`: what state a session is in and what to do next.

Kept apart from the commands so they can be tested without a terminal. After a Ctrl-C, a kill or a failed
run, `sessions show` used to print only a header; these lines say what happened and which command continues.
"""

from __future__ import annotations

from typing import Any

from promptomatix.sessions.models import PromptVersion, Session, display_status

INTERRUPTED_LABEL = "best so far (interrupted, not scored on the held-out test)"


def is_interrupted(version: PromptVersion) -> bool:
    """A version saved at an interrupt: chosen on valid scores only, never run on the test split."""
    return bool(version.settings.get("interrupted"))


def _last_event(session: Session, *kinds: str) -> dict[str, Any] | None:
    for event in reversed(session.events):
        if event.get("kind") in kinds:
            return event
    return None


def _event_detail(event: dict[str, Any] | None) -> str:
    if not event:
        return ""
    at = str(event.get("at", ""))[:19].replace("T", " ")
    why = next((str(event[k]) for k in ("error", "message", "reason", "cause") if event.get(k)), "")
    return f" ({at} UTC{': ' + why if why else ''})" if at else (f" ({why})" if why else "")


def state_lines(session: Session, live_run: dict[str, Any] | None) -> list[str]:
    """What happened to a session without prompt versions, or one that did not finish, and what to do."""
    sid, status = session.session_id, session.status
    resume = f"continue it with `promptomatix resume {sid}` (calls already made replay from its cache)"
    has_versions = bool(session.versions)
    kept = "its best so far is shown below" if has_versions else "no prompt version was saved yet"
    if live_run:
        return [f"a run is in progress ({display_status(status, live_run)}); versions appear as it saves them"]
    if status == "running":
        return [f"stale: recorded as running, but no process holds it (killed or crashed); {kept}; {resume}"]
    if status == "interrupted":
        detail = _event_detail(_last_event(session, "interrupted"))
        return [f"interrupted{detail}; {kept}; {resume}"]
    if status == "failed":
        event = _last_event(session, "failed")
        return [f"the run failed{_event_detail(event)}; {kept}; {failed_next_step(event, resume)}"]
    if status == "created" and not has_versions:
        return [f"the run stopped before its first stage; start it with `promptomatix resume {sid}`"]
    return []


#: Failure causes that are a value of the command line which `resume` cannot change (it runs with the session's
#: settings and takes none of these flags), by the words of their message → the flag; a file the value names may
#: still be created or fixed in place.
_NAMED_VALUES = (
    ("unknown dspy module", "--dspy-module"), ("unknown dspy optimizer", "--dspy-optimizer"),
    ("unknown local model", "--model"), ("unknown model", "--model"), ("no model provider serves", "--model"),
    ("no dataset name", "--data"),
)  # fmt: skip
_NAMED_FILES = (("meta-prompt", "--meta-prompt"), ("gguf file not found", "--model"),
                ("metric file", "--metric"), ("metric module", "--metric"))  # fmt: skip


def failed_next_step(event: dict[str, Any] | None, resume: str) -> str:
    """What to do after a failed run: `resume` repeats a failure caused by a wrong flag value, so that one names
    the flag and a new `optimize` run (it said "fix the cause, then resume", which never could)."""
    event = event or {}
    why = next((str(event[k]) for k in ("error", "message", "reason", "cause") if event.get(k)), "").lower()
    new_run = "start a new `promptomatix optimize` run with the right {}".format
    if flag := next((f for words, f in _NAMED_VALUES if words in why), None):
        return f"resume keeps the session's {flag}: {new_run(flag)}"
    if flag := next((f for words, f in _NAMED_FILES if words in why), None):
        return f"create or fix the file it names, then {resume}; or {new_run(flag)}"
    return f"fix the cause, then {resume}"


def estimated_note(estimated_calls: int) -> str:
    """Said beside a token count when the server sent no counts for some calls: those tokens are our estimate."""
    if not estimated_calls:
        return ""
    return f" (estimated for {estimated_calls} {'call' if estimated_calls == 1 else 'calls'} the server sent no counts for)"


def spent_line(session: Session) -> str | None:
    """What every run of the session cost, failed and interrupted ones included (versions only show their own)."""
    t = session.total_spent()
    if not t.calls and not t.cached_calls:
        return None
    cost = "cost unknown" if t.cost_usd is None else f"${t.cost_usd:.4f}"
    tokens = f"{t.prompt_tokens + t.completion_tokens} tokens{estimated_note(t.estimated_calls)}"
    return f"spent in all runs: {t.calls} calls ({t.cached_calls} cached), {tokens}, {cost}"


def model_line(session: Session) -> str | None:
    """Which model and endpoint the session ran with, and whether credentials must be passed again."""
    cfg = session.run_config
    if not cfg.get("model"):
        return None
    line = f"model {cfg['model']}"
    if cfg.get("api_base"):
        line += f" at {cfg['api_base']}"
    teacher = cfg.get("teacher_model")
    if teacher or cfg.get("teacher_api_base"):
        line += f" · teacher {teacher or cfg['model']}"
        line += f" at {cfg['teacher_api_base']}" if cfg.get("teacher_api_base") else ""
    names = [f.removeprefix("run_config.") for f in session.stripped_credentials()]
    if names:
        flags = " and ".join("--teacher-api-base" if n == "teacher_api_base" else "--api-base" for n in names)
        line += (
            f" · the {', '.join(names)} had credentials that were not saved: pass {flags} (and the key) again "
            "to refine or resume"
        )
    if cfg.get("teacher_own_key"):
        line += " · the teacher had its own key: pass --teacher-api-key again to refine, resume or generate feedback"
    return line


def version_note(version: PromptVersion) -> str:
    return f" · {INTERRUPTED_LABEL}" if is_interrupted(version) else ""
