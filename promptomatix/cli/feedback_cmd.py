"""`promptomatix feedback add|list|generate|dismiss`: comments on a session's prompt (kept apart from `sessions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from promptomatix.cli import optimize_cmd as run_opts
from promptomatix.cli.render import print_json, visible
from promptomatix.cli.sessions_cmd import SessionsDir, _about, _store
from promptomatix.cli.upstream_opts import PARAMS as TEACHER_PARAMS

if TYPE_CHECKING:
    from promptomatix.sessions import SessionStore
    from promptomatix.sessions.models import FeedbackItem

feedback_app = typer.Typer(help="Feedback on a session's prompt: add, list, generate, dismiss.", no_args_is_help=True)


@feedback_app.command("add")
def feedback_add(
    session_id: str = typer.Argument(...),
    comment: str = typer.Option(None, "--comment", "-c", help="What to change."),
    text: str = typer.Option(
        None, "--text", "-t", help="Exact words of the prompt the --comment is about (leave out: the whole prompt)."
    ),
    start: int = typer.Option(None, "--start", min=0, help="Start offset of the span (with --end)."),
    end: int = typer.Option(None, "--end", min=0, help="End offset of the span (with --start)."),
    version: int = typer.Option(None, "--version", help="The version the span refers to (default: latest)."),
    sessions_dir: str = SessionsDir,
) -> None:
    """Add a comment on a span of the prompt (--text or --start/--end) or on the whole prompt."""
    from promptomatix.errors import UsageError

    if not (comment or "").strip():  # `--text` alone was once stored as the comment: refine did the quoted words
        if text is not None:
            raise UsageError("--text needs --comment", hint='--text quotes the prompt, --comment "too vague" says '
                             "what to change; leave out --text to comment on the whole prompt")  # fmt: skip
        raise UsageError("no feedback given", hint='pass --comment "what to change" (and --text for a span)')
    store = _store(sessions_dir)
    before = {f.id for f in store.load(session_id).feedback}
    item = _add(store, session_id, comment, text, start, end, version)
    span = f' on "{item.text}" [{item.start}:{item.end}]' if item.text else ""
    if item.id in before:
        typer.echo(visible(f"already recorded as {item.id}{span} (open); nothing added"))
        return
    if store.load(session_id).latest_version() is None:  # refine refuses a session with no version yet
        first = f"the session has no prompt yet: finish its run with `promptomatix resume {session_id}`, then "
        typer.echo(visible(f"added {item.id}{span}; {first}apply it with `promptomatix refine {session_id}`"))
        return
    typer.echo(visible(f"added {item.id}{span}; apply it with `promptomatix refine {session_id}`"))


def _add(store: SessionStore, session_id: str, comment: str, text: str | None, start: int | None,
         end: int | None, version: int | None) -> FeedbackItem:  # fmt: skip
    """`add_feedback`, with a span that does not fit the prompt made a usage error (exit 2) naming the fix: the
    quote and offsets are command-line values, and the user needs to see the prompt to correct them."""
    from promptomatix.errors import ConfigurationError, PluginError, UsageError
    from promptomatix.sessions.feedback import add_feedback

    try:
        return add_feedback(store, session_id, comment=comment, text=text, start=start, end=end, version=version)
    except (UsageError, PluginError):
        raise
    except ConfigurationError as e:
        if text is None and start is None and end is None:
            raise
        flags = "--text" if start is None and end is None else "--start/--end"
        hint = f"leave out {flags} to comment on the whole prompt"
        if store.load(session_id).versions:  # else there is no prompt to export
            which = f" --version {version}" if version is not None else ""
            hint = f"see the prompt with `promptomatix sessions export {session_id}{which}`, or {hint}"
        raise UsageError(e.message, hint=hint) from e


@feedback_app.command("list")
def feedback_list(
    session_id: str = typer.Argument(...),
    status: str = typer.Option(None, "--status", help="open | applied | dismissed"),
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """List a session's feedback items."""
    from promptomatix.errors import UsageError
    from promptomatix.sessions.feedback import list_feedback

    if status is not None and status not in ("open", "applied", "dismissed"):  # a typo listed nothing, exit 0
        raise UsageError(f"unknown feedback status '{status}'", hint="use --status open, applied or dismissed")
    items = list_feedback(_store(sessions_dir).load(session_id), status=status)  # type: ignore[arg-type]
    if json_:
        print_json([f.model_dump(mode="json") for f in items])
        return
    for f in items:  # control characters in the text (a model wrote it, or pasted terminal output) made visible
        where = f' "{f.text}" [{f.start}:{f.end}]' if f.text else ""
        typer.echo(visible(f"{f.id}\t{f.status}\t{f.source}\t{_about(f.version)}{where}: {f.comment}"))
    if not items:
        typer.echo("no feedback")


@feedback_app.command("generate")
def feedback_generate(
    session_id: str = typer.Argument(...),
    api_key: str = run_opts.API_KEY,
    api_base: str = run_opts.API_BASE,
    teacher_api_key: str = TEACHER_PARAMS[1].default,
    teacher_api_base: str = TEACHER_PARAMS[0].default,
    max_calls: int = run_opts.MAX_CALLS,
    max_usd: float = run_opts.MAX_USD,
    max_minutes: float = run_opts.MAX_MINUTES,
    max_tokens: int = run_opts.MAX_TOKENS,
    max_total_tokens: int = run_opts.MAX_TOTAL_TOKENS,
    request_timeout: float = run_opts.REQUEST_TIMEOUT,
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """An LLM critic (the teacher model) turns the latest prompt's failures into feedback items."""
    from promptomatix.cli.fakes import clients_from_env
    from promptomatix.followup import generate_feedback

    budget = run_opts.budget_overrides(max_calls, max_usd, max_minutes, max_tokens, max_total_tokens, request_timeout)
    budget.update({k: v for k, v in (("teacher_api_key", teacher_api_key), ("teacher_api_base", teacher_api_base)) if v})
    clients = clients_from_env()
    with run_opts.run_stdout(json_), run_opts.ProgressView(not (json_ or quiet), max_calls, max_usd) as view:
        out = generate_feedback(
            session_id, store=_store(sessions_dir), api_key=api_key, api_base=api_base, clients=clients,
            progress=view, **budget,
        )  # fmt: skip
    if json_:
        print_json(out)
        return
    items = out["feedback_items"]
    typer.echo(f"{len(out['individual_feedbacks'])} failures on {out['synthetic_data_used']} examples; "
               f"{len(items)} feedback items added")  # fmt: skip
    for f in items:  # the teacher wrote these
        typer.echo(visible(f"{f['id']}: {f['comment']}"))


@feedback_app.command("dismiss")
def feedback_dismiss(
    session_id: str = typer.Argument(...),
    ids: list[str] = typer.Argument(..., help="Feedback ids, e.g. fb1 fb3."),
    sessions_dir: str = SessionsDir,
) -> None:
    """Dismiss feedback items so refine ignores them."""
    from promptomatix.sessions.feedback import dismiss_feedback

    _store(sessions_dir).update(session_id, lambda s: dismiss_feedback(s, ids))
    typer.echo(visible(f"dismissed {', '.join(ids)}"))
