"""The `promptomatix ui` ASGI app: server-rendered pages over the same session store and runs as the CLI.

`create_app` wires the routes, the templates (Jinja2, autoescaped), the static files shipped in this package
(no CDN, no build step) and the guard (token, CSRF, headers). Handlers live in `pages` (GET) and `actions` (POST).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from promptomatix.errors import NotFoundError, PromptomatixError, SessionError
from promptomatix.sessions import SessionStore
from promptomatix.ui import actions, jobs, pages
from promptomatix.ui.runs import RunManager
from promptomatix.ui.security import Guard, csrf_for, new_token

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # a data file for a new run; larger data belongs on the command line
MAX_FIELD_BYTES = 256 * 1024  # any other form field (a comment, a task sentence)


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) and not isinstance(value, bool) else "n/a"


def _score(s: Any) -> str:
    """A held-out score with its CI, or n/a."""
    if s is None or getattr(s, "mean", None) is None:
        return "n/a"
    ci = f" [{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.ci_low is not None and s.ci_high is not None else ""
    return f"{s.mean:.3f}{ci} n={s.n}"


def _money(value: Any) -> str:
    return f"${value:.4f}" if isinstance(value, int | float) else "unknown"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _keep_cr(text: Any) -> markupsafe.Markup:
    """Escaped text with each CR as `&#13;`: the HTML parser turns a raw "\r\n" or "\r" into "\n", which shifts
    every offset the browser reports after it; a character reference survives parsing, so the DOM text is exactly
    the stored prompt (and `Range` offsets match it). A lone CR also gets a `<br>` (no text) to show its line break."""
    html = re.sub(r"\r(?!\n)", "&#13;<br>", str(markupsafe.escape(text)))  # escaped first: only our tags are added
    return markupsafe.Markup(html.replace("\r", "&#13;"))


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every value is escaped: a prompt holding <script> shows as text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(num=_num, score=_score, money=_money, when=_when, keep_cr=_keep_cr)
    return Jinja2Templates(env=env, context_processors=[lambda r: {"csrf": r.app.state.csrf}])


async def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    elif isinstance(exc, NotFoundError) or (isinstance(exc, SessionError) and str(exc).startswith("invalid session id")):
        status, message = 404, str(exc)
    elif isinstance(exc, PromptomatixError):
        status, message = 400 if not isinstance(exc, SessionError) else 409, str(exc)
    else:
        log.exception("ui request failed", exc_info=exc)
        status, message = 500, f"unexpected error: {type(exc).__name__} (see the server's log)"
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"status": status, "message": message}, status_code=status)


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(app.state.runs.shutdown)


def create_app(
    store: SessionStore | None = None,
    *,
    token: str | None = None,
    clients: Callable[[], dict[str, Any] | None] | None = None,
    allowed_hosts: Iterable[str] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
) -> Starlette:
    """The app. `clients` builds model clients per run (fake ones in tests; None: the configured models)."""
    routes = [
        Route("/", pages.sessions_page),
        Route("/new", pages.new_page, methods=["GET"]),
        Route("/new", jobs.start_optimize, methods=["POST"]),
        Route("/s/{sid}", pages.session_page),
        Route("/s/{sid}/delete", pages.delete_page, methods=["GET"]),
        Route("/s/{sid}/delete", actions.delete_session, methods=["POST"]),
        Route("/s/{sid}/export", pages.export),
        Route("/s/{sid}/feedback", actions.add_feedback, methods=["POST"]),
        Route("/s/{sid}/feedback/{fid}", actions.change_feedback, methods=["POST"]),
        Route("/s/{sid}/pick", actions.pick_candidate, methods=["POST"]),
        Route("/s/{sid}/run/{kind}", jobs.start_run, methods=["POST"]),
        Route("/jobs/{jid}", pages.job_page),
        Route("/jobs/{jid}/status", pages.job_status),
        Route("/jobs/{jid}/cancel", jobs.cancel_job, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    token = token or new_token()
    app = Starlette(
        routes=routes,
        # the body limit inside the guard: its 413 carries the security headers (Starlette's own sits outside it)
        middleware=[Middleware(Guard, token=token, allowed_hosts=allowed_hosts),
                    Middleware(RequestBodyLimitMiddleware, max_body_size=max_upload_bytes + MAX_FIELD_BYTES)],
        exception_handlers={Exception: _error_page, HTTPException: _error_page, PromptomatixError: _error_page},
        lifespan=_lifespan,
    )
    app.state.store = store or SessionStore()
    app.state.token = token
    app.state.csrf = csrf_for(token)
    app.state.templates = _templates()
    app.state.runs = RunManager(app.state.store, clients or (lambda: None))
    app.state.max_upload_bytes = max_upload_bytes
    app.state.max_field_bytes = MAX_FIELD_BYTES
    return app
