"""POST handlers that start or cancel background runs: refine, resume, generate feedback, a new optimization.

The work is the library's own (`followup.*`, `pipeline.Run`); see `runs` for the worker threads and how a
cancel becomes the run's Ctrl-C path.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from promptomatix.errors import ConfigurationError
from promptomatix.sessions.fs import writing
from promptomatix.sessions.uploads import UPLOAD_TYPES, UPLOADS_DIR, remove_upload, save_upload, split_name
from promptomatix.ui.actions import _refuse_if_busy
from promptomatix.ui.actions import _text as _field
from promptomatix.ui.pages import _int, session_id, store_of
from promptomatix.ui.runs import Job
from promptomatix.ui.security import checked_form

RUN_KINDS = ("refine", "resume", "generate")


async def start_run(request: Request) -> Response:
    sid = session_id(request)
    form = await checked_form(request)
    kind = request.path_params["kind"]
    if kind not in RUN_KINDS:
        raise HTTPException(404, f"unknown run {kind[:20]!r}; use one of {', '.join(RUN_KINDS)}")
    _refuse_if_busy(request, sid, f"start {kind}")
    store_of(request).load(sid)  # a missing session fails here, not in the worker
    runs = request.app.state.runs
    clients = runs.clients
    limits = _limits(form)  # a resume whose run has spent its limit is given a larger one here, as on the CLI
    keys = server_keys()

    def work(job: Job, progress: Any) -> Any:
        from promptomatix import followup

        store = store_of(request)
        if kind == "refine":
            return followup.refine(sid, store=store, clients=clients(), progress=progress, **limits, **keys)
        if kind == "resume":
            return followup.resume(sid, store=store, clients=clients(), progress=progress, **limits, **keys)
        job.add_event("generate", "the critic reads the latest prompt's failures")
        return followup.generate_feedback(sid, store=store, clients=clients(), **keys)

    runs.start(kind, sid, work)
    return RedirectResponse(f"/s/{sid}#run", status_code=303)


def server_keys() -> dict[str, str]:
    """The keys `promptomatix ui` was started with (PROMPTOMATIX_API_KEY, PROMPTOMATIX_TEACHER_API_KEY), as the CLI's
    follow-ups read them: never from a page, never shown or saved. A session whose teacher had its own key was
    refused in the UI whatever the server had."""
    import os

    names = (("api_key", "PROMPTOMATIX_API_KEY"), ("teacher_api_key", "PROMPTOMATIX_TEACHER_API_KEY"))
    return {k: v for k, env in names if (v := os.environ.get(env, "").strip())}


async def _save_upload(request: Request, upload: UploadFile) -> str | None:
    """Keep an uploaded data file beside the sessions (the run, and a later resume, read it by path)."""
    name = upload.filename or ""
    if not name:
        return None
    stem, suffix = split_name(name)
    if suffix not in UPLOAD_TYPES:
        raise ConfigurationError(f"data file {name!r} is not {', '.join(UPLOAD_TYPES)}")
    cap = request.app.state.max_upload_bytes
    body = await upload.read(cap + 1)
    if len(body) > cap:
        raise HTTPException(413, f"the data file is larger than {cap >> 20} MB; use `promptomatix optimize --data`")
    if not body.strip():
        return None
    root = store_of(request).root
    with writing(root / UPLOADS_DIR, "save the uploaded data file in"):
        return str(save_upload(root, stem, suffix, body))


def _names(form: FormData, name: str) -> list[str] | None:
    """A comma-separated list of field names (RunConfig refuses a name given twice, on the page)."""
    names = [x.strip() for x in (_field(form, name) or "").split(",") if x.strip()]
    return names or None


def _run_kwargs(form: FormData) -> dict[str, Any]:
    def _text(form: FormData, name: str) -> str | None:
        return (_field(form, name) or "").strip() or None

    fields = {
        "raw_input": _text(form, "task"),
        "backend": _text(form, "backend"),
        "model": _text(form, "model"),
        "teacher_model": _text(form, "teacher_model"),
        "search_type": _text(form, "search_type"),
        "input_fields": _names(form, "input_fields"),
        "output_fields": _names(form, "output_fields"),
        "synthetic_data_size": _int(_text(form, "synthetic_data_size")),
        "max_minutes": _float(_text(form, "max_minutes")),
        **_limits(form),
    }
    return {k: v for k, v in fields.items() if v is not None}


def _limits(form: FormData) -> dict[str, Any]:
    """The budget fields a run form may carry (empty: the run's own limits)."""
    given = {"max_calls": _int((_field(form, "max_calls") or "").strip()),
             "max_usd": _float((_field(form, "max_usd") or "").strip())}  # fmt: skip
    for name, value in given.items():
        if value is not None and value < 0:
            raise HTTPException(400, f"{name} must be 0 or more")
    return {k: v for k, v in given.items() if v is not None}


def _float(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise HTTPException(400, f"not a number: {value[:20]!r}") from None


async def start_optimize(request: Request) -> Response:
    form = await checked_form(request)
    kwargs = _run_kwargs(form)
    upload = form.get("data")
    data = await _save_upload(request, upload) if isinstance(upload, UploadFile) else None
    try:
        if not kwargs.get("raw_input") and not data:
            raise ConfigurationError("no task given; describe it in one sentence (and/or upload data)")
        if data:
            kwargs["data"] = data
            kwargs.setdefault("raw_input", "Learn the task shown by the uploaded data")
        from promptomatix.config import RunConfig

        store = store_of(request)
        cfg = RunConfig.from_kwargs(**kwargs, **server_keys(), sessions_dir=str(store.root))  # a bad one fails here
        job = request.app.state.runs.start("optimize", None, _optimize_work(request, cfg, data))
    except Exception:
        remove_upload(data)  # a refused form leaves no upload behind
        raise
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _optimize_work(request: Request, cfg: Any, upload: str | None) -> Any:
    store, runs = store_of(request), request.app.state.runs

    def work(job: Job, progress: Any) -> Any:
        from promptomatix.pipeline import Run

        made: list[Run] = []

        def report(event: Any) -> None:
            job.session_id = job.session_id or made[0].session_id
            progress(event)

        try:
            made.append(Run(cfg, clients=runs.clients(), store=store))
            made[0].progress = report
            return made[0].execute()
        except BaseException:
            job.session_id = job.session_id or (made[0].session_id if made else None)
            if job.session_id is None:
                remove_upload(upload)  # no session records it, so no delete would ever remove it
            raise

    return work


async def cancel_job(request: Request) -> Response:
    await checked_form(request)
    job = request.app.state.runs.cancel(request.path_params["jid"])
    if request.headers.get("x-csrf-token"):  # from the page's script: it keeps polling
        from starlette.responses import JSONResponse

        return JSONResponse(job.snapshot())
    target = f"/s/{job.session_id}#run" if job.session_id else f"/jobs/{job.id}"
    return RedirectResponse(target, status_code=303)
