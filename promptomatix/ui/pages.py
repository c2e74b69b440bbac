"""GET handlers: the sessions list, a session, the new-run form, a run's progress, exports."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from promptomatix.errors import NotFoundError, PromptomatixError, SessionError
from promptomatix.sessions import Session, SessionStore, validate_id
from promptomatix.ui import views

DEFAULT_RUN_FORM = {"backend": "simple_meta_prompt", "search_type": "quick", "synthetic_data_size": 30}


def store_of(request: Request) -> SessionStore:
    return request.app.state.store


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, name, context, status_code=status)


def session_id(request: Request) -> str:
    return validate_id(request.path_params["sid"])  # SessionError -> 404 page


def load(request: Request) -> Session:
    return store_of(request).load(session_id(request))


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise HTTPException(400, f"not a number: {value[:20]!r}") from None


async def sessions_page(request: Request) -> Response:
    store = store_of(request)
    rows, unreadable = [], []
    for summary in store.list():
        if summary.error is not None:
            unreadable.append(summary)
            continue
        try:
            rows.append(views.session_row(store.load(summary.session_id)))
        except PromptomatixError as e:  # changed or broken between list and load
            unreadable.append(summary.model_copy(update={"error": str(e)}))
    p = request.query_params
    sort = p.get("sort", "created") if p.get("sort") in views.SORT_KEYS else "created"
    desc = p.get("order", "desc") != "asc"
    shown = views.filter_sort(rows, p.get("q", ""), p.get("status", ""), sort, desc)
    runs = request.app.state.runs
    for r in shown:
        r["live"] = runs.busy(r["id"]) is not None  # from this page or from another process (the CLI)
    ctx = {"rows": shown, "total": len(rows), "unreadable": unreadable, "q": p.get("q", ""),
           "status": p.get("status", ""), "sort": sort, "desc": desc, "statuses": views.STATUSES,
           "sort_keys": views.SORT_KEYS, "root": str(store.root)}  # fmt: skip
    return render(request, "sessions.html", ctx)


def _diff_pair(s: Session, p: Any, shown: int) -> tuple[int | None, int | None]:
    numbers = [v.version for v in s.versions]
    a, b = _int(p.get("a")), _int(p.get("b"))
    if a in numbers and b in numbers:
        return a, b
    parent = s.get_version(shown).parent if numbers else None
    return (parent, shown) if parent in numbers else (None, None)


async def session_page(request: Request) -> Response:
    s = load(request)
    p = request.query_params
    shown = s.get_version(_int(p.get("v"))) if s.versions else None
    a, b = _diff_pair(s, p, shown.version) if shown else (None, None)
    runs = request.app.state.runs
    job = runs.live_job(s.session_id) or runs.last_job(s.session_id)
    items_here = [f for f in s.feedback if shown is not None and f.version == shown.version]
    examples = views.test_examples(shown) if shown else None
    failures_only = p.get("failures") == "1"
    if examples is not None and failures_only:
        examples = [e for e in examples if e["failed"]]
    ctx = {
        "s": s,
        "v": shown,
        "cfg": s.run_config or {},
        "segments": views.prompt_segments(shown.prompt, items_here) if shown else [],
        "diff": views.side_by_side(s.get_version(a).prompt, s.get_version(b).prompt) if a and b else None,
        "a": a,
        "b": b,
        "verdict": views.verdict_of(shown),
        "verdicts": {ver.version: views.verdict_of(ver) for ver in s.versions},
        **views.version_extras(s),  # valid scores on one λ, why a picked version has no verdict, the front's length
        "chart": views.chart(shown) if shown else None,
        "examples": examples,
        "failures_only": failures_only,
        "job": job.snapshot() if job else None,
        "busy": runs.busy(s.session_id),
        "has_data": bool(s.task_spec and s.data),
        "picked_same": p.get("picked") == "same",  # a fixed notice: no text from the URL is shown
    }
    return render(request, "session.html", ctx)


async def delete_page(request: Request) -> Response:
    """The confirmation, for a session that does not load too (corrupt, newer schema): deleting it is the fix its
    error names, as `promptomatix sessions delete` does."""
    sid, store = session_id(request), store_of(request)
    store.require(sid)  # no such session: 404
    s, broken = None, None
    try:
        s = store.load(sid)
    except NotFoundError:
        raise
    except SessionError as e:
        broken = str(e)
    ctx = {"sid": sid, "s": s, "broken": broken, "busy": request.app.state.runs.busy(sid)}
    return render(request, "confirm_delete.html", ctx)


async def new_page(request: Request) -> Response:
    return render(request, "new.html", {"form": DEFAULT_RUN_FORM, "max_mb": request.app.state.max_upload_bytes >> 20})


def _job(request: Request) -> Any:
    job = request.app.state.runs.get(request.path_params["jid"])
    if job is None:
        raise HTTPException(404, "no such run on this server (runs are kept in memory until it stops)")
    return job


async def job_page(request: Request) -> Response:
    return render(request, "job.html", {"job": _job(request).snapshot()})


async def job_status(request: Request) -> Response:
    """JSON, errors too: the page's script polls it."""
    since = _int(request.query_params.get("since")) or 0
    job = request.app.state.runs.get(request.path_params["jid"])
    if job is None:
        return JSONResponse({"error": "no such run on this server (runs are kept in memory until it stops)"}, 404)
    return JSONResponse(job.snapshot(since=max(0, since)))


async def export(request: Request) -> Response:
    sid = session_id(request)
    fmt = request.query_params.get("format", "text")
    if fmt not in ("text", "json", "dspy"):
        raise HTTPException(400, "unknown export format; choose text, json or dspy")
    version = _int(request.query_params.get("v"))
    try:
        body = store_of(request).export(sid, fmt, version=version)  # type: ignore[arg-type]
    except SessionError as e:
        raise HTTPException(404 if isinstance(e, NotFoundError) else 409, str(e)) from None
    ext, media = {"text": ("txt", "text/plain"), "json": ("json", "application/json"),
                  "dspy": ("json", "application/json")}[fmt]  # fmt: skip
    suffix = f"-v{version}" if version else ""
    name = f"{sid}{suffix}-{fmt}.{ext}"
    return Response(body, media_type=f"{media}; charset=utf-8",
                    headers={"content-disposition": f'attachment; filename="{name}"'})  # fmt: skip
