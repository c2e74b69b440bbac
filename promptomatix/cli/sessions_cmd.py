"""`promptomatix sessions list|show|pick|export|delete` and `promptomatix feedback add|list|generate|dismiss`."""

from __future__ import annotations

from typing import Any

import typer

from promptomatix.cli import optimize_cmd as run_opts
from promptomatix.cli.render import console, print_json

sessions_app = typer.Typer(help="Saved optimization sessions: list, show, pick, export, delete.", no_args_is_help=True)
feedback_app = typer.Typer(help="Feedback on a session's prompt: add, list, generate, dismiss.", no_args_is_help=True)

SessionsDir = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR", help="Session store.")


def _store(sessions_dir: str | None):
    from promptomatix.sessions import SessionStore

    return SessionStore(sessions_dir)


@sessions_app.command("list")
def sessions_list(sessions_dir: str = SessionsDir, json_: bool = typer.Option(False, "--json")) -> None:
    """List sessions, newest first."""
    rows = _store(sessions_dir).list()
    if json_:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        typer.echo('no sessions yet: run `promptomatix optimize "…"`')
        return
    # Plain aligned lines, not a table: ids never wrap or get cut (they are copied into other commands).
    typer.echo(f"{'session':<22}  {'created':<16}  {'status':<11}  {'v':>2}  {'best':>5}  {'fb':>2}  description")
    for r in rows:
        best = f"{r.best_score:.3f}" if r.best_score is not None else "-"
        created = r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "-"
        desc = r.description if r.error is None else f"unreadable: {r.error}"
        desc = desc if len(desc) <= 60 else desc[:59] + "…"
        status = r.state if r.error is None else "?"
        typer.echo(
            f"{r.session_id:<22}  {created:<16}  {status:<11}  {r.n_versions:>2}  {best:>5}  {r.n_open_feedback:>2}  {desc}"
        )


def _score(s) -> str:
    if s is None:
        return "-"
    if hasattr(s, "mean"):
        ci = f" [{s.ci_low:.2f}, {s.ci_high:.2f}]" if s.ci_low is not None else ""
        return f"{s.mean:.3f}{ci} n={s.n}"
    raw = f"{s.raw:.3f}" if s.raw is not None else "-"
    pen = f"{s.penalized:.3f}" if s.penalized is not None else "-"
    return f"{raw} / {pen}"


@sessions_app.command("show")
def sessions_show(
    session_id: str = typer.Argument(...),
    diff: tuple[int, int] = typer.Option((0, 0), "--diff", help="Diff two versions, e.g. --diff 1 2."),
    candidates: bool = typer.Option(False, "--candidates", help="Every candidate the latest version tried."),
    pareto: bool = typer.Option(False, "--pareto", help="The latest version's quality-vs-length front."),
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Versions with scores, cost and the prompt diff from each version's parent; feedback items."""
    import difflib

    from rich.panel import Panel

    from promptomatix.cli import sessions_view as view
    from promptomatix.sessions.models import display_status
    from promptomatix.sessions.store import scrub_session_payload

    store = _store(sessions_dir)
    s = store.load(session_id)
    live = store.live_run(session_id)
    if json_:
        print_json({**scrub_session_payload(s.model_dump(mode="json")), "live_run": live})
        return
    from rich.markup import escape

    c = console()
    c.print(f"[bold]{s.session_id}[/] · {escape(display_status(s.status, live))} · {escape(s.description)}")
    for line in filter(None, [view.model_line(s), view.spent_line(s), *view.state_lines(s, live)]):
        c.print(escape(line))
    for v in s.versions:
        parent = f" (from v{v.parent})" if v.parent else ""
        applied = f" · applied {', '.join(v.feedback_applied)}" if v.feedback_applied else ""
        line = (
            f"{parent} · {v.backend} · valid raw/penalized {_score(v.valid)} · test {_score(v.test)} "
            f"(initial {_score(v.initial_test)}) · {v.usage.calls} calls ({v.usage.cached_calls} cached) · "
            f"${v.usage.cost_usd or 0:.4f} · {v.duration_s or 0:.0f}s{applied}{view.version_note(v)}"
        )
        c.print(f"[bold]v{v.version}[/]" + escape(line))
        for extra in _verdict_lines(v):
            c.print("    " + escape(extra))
    pairs = [diff] if diff != (0, 0) else [(v.parent, v.version) for v in s.versions if v.parent]
    for a, b in pairs:
        va, vb = s.get_version(a), s.get_version(b)
        text = "\n".join(difflib.unified_diff(va.prompt.splitlines(), vb.prompt.splitlines(), f"v{a}", f"v{b}",
                                              lineterm="", n=2))  # fmt: skip
        c.print(Panel(escape(text) or "(identical)", title=f"prompt diff v{a} → v{b}"))
    latest = s.latest_version()
    if candidates and latest:
        for line in _candidate_lines(latest.version, latest.candidates):
            c.print(escape(line))
    if pareto and latest:
        for line in _pareto_lines(s.session_id, latest):
            c.print(escape(line))
    if latest and (not pairs or view.is_interrupted(latest)):
        title = f"prompt v{latest.version}" + (f" — {view.INTERRUPTED_LABEL}" if view.is_interrupted(latest) else "")
        c.print(Panel(escape(latest.prompt), title=title))
    for f in s.feedback:
        where = f'[{f.start}:{f.end}] "{f.text}" ' if f.text else ""
        applied = f" (applied in v{f.applied_in})" if f.applied_in else ""
        c.print(escape(f"{f.id} {f.status}{applied} {f.source} v{f.version}: {where}{f.comment}"))


def _verdict_lines(v: Any) -> list[str]:
    """The paired held-out verdict of a version (outcome, diff and CI, wins/losses/ties, p, detectable size)."""
    from promptomatix.metrics.verdict import PairedVerdict

    picked = v.settings.get("picked")
    if picked and not v.verdict:
        return [f"picked candidate #{picked.get('candidate')} of v{picked.get('version')}: valid score from the run; "
                "not scored on the held-out test"]  # fmt: skip
    if not v.verdict:
        return []
    verdict = PairedVerdict(**v.verdict)
    return [f"verdict: {verdict.summary()}", *filter(None, [verdict.length_note()])]


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else "-"


def _pareto_lines(session_id: str, version: Any) -> list[str]:
    """The candidates no other beats on raw valid quality without being longer; `sessions pick` makes one a version."""
    from promptomatix.sessions.pick import front_rows

    rows = front_rows(version)
    if not rows:
        return [f"v{version.version} has no candidates scored on valid"]
    out = [f"quality-vs-length front of v{version.version} (raw scores, no length penalty; minibatch → valid → "
           "confirmation):"]  # fmt: skip
    for r in rows:
        chosen = f" ← v{version.version}" if r.get("prompt") == version.prompt else ""
        text = " ".join(str(r.get("instructions", "")).split())
        text = text if len(text) <= 70 else text[:69] + "…"
        tokens = f" · ≈{r['tokens']} tokens/call" if r.get("tokens") else ""
        out.append(
            f"#{r.get('id')} {r.get('origin')} · valid {_num(r.get('valid_raw'))} · {r.get('length', '-')} words"
            f"{tokens} · {r.get('n_demos', 0)} demos · {_num(r.get('minibatch_raw'))} → {_num(r.get('valid_raw'))} → "
            f'{_num(r.get("confirm_raw"))} · "{text}"{chosen}'
        )
    out.append(f"make one the next version: promptomatix sessions pick {session_id} CANDIDATE (or --lambda X)")
    return out


def _candidate_lines(version: int, rows: list[dict]) -> list[str]:
    """One line per candidate: where it came from and each stage's score, so a user sees why one won."""

    def num(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, int | float) else "-"

    out = [f"candidates of v{version} (scores penalized by length; minibatch → valid → confirmation):"]
    for r in rows:
        text = " ".join(str(r.get("instructions", "")).split())
        text = text if len(text) <= 90 else text[:89] + "…"
        note = f" ({r['note']})" if r.get("note") else ""
        out.append(
            f"#{r.get('id')} r{r.get('round')} {r.get('origin')} · {r.get('n_demos', 0)} demos · "
            f"{r.get('length', '-')} words · {num(r.get('minibatch_score'))} → {num(r.get('valid_penalized'))} → "
            f'{num(r.get("confirm_score"))} · "{text}"{note}'
        )
    return out


@sessions_app.command("pick")
def sessions_pick(
    session_id: str = typer.Argument(...),
    candidate: int = typer.Argument(None, help="A candidate id (see `sessions show ID --pareto`)."),
    lambda_: float = typer.Option(None, "--lambda", help="Re-select: the best under this length penalty λ."),
    version: int = typer.Option(None, "--version", help="The version whose candidates to pick from (default: latest)."),
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Make a candidate of a run the next version, without model calls (a later refine starts from it)."""
    from promptomatix.errors import UsageError
    from promptomatix.sessions.pick import pick_candidate, pick_for_lambda
    from promptomatix.sessions.runlock import busy_error

    if (candidate is None) == (lambda_ is None):
        raise UsageError(
            "pick needs a candidate id or --lambda (not both)", hint=f"promptomatix sessions pick {session_id} 3"
        )
    store = _store(sessions_dir)
    live = store.live_run(session_id)
    if live:
        raise busy_error(session_id, live)
    made: dict[str, Any] = {}

    def apply(s: Any) -> None:
        if candidate is not None:
            made["v"] = pick_candidate(s, candidate, version=version)
        else:
            made["v"] = pick_for_lambda(s, lambda_, version=version)

    store.update(session_id, apply)
    v = made["v"]
    if json_:
        print_json(v.model_dump(mode="json"))
        return
    picked = v.settings["picked"]
    typer.echo(f"v{v.version}: candidate #{picked['candidate']} of v{picked['version']} (valid raw {_num(v.valid.raw)}, "
               f"penalized {_num(v.valid.penalized)}); no model calls made")  # fmt: skip


@sessions_app.command("export")
def sessions_export(
    session_id: str = typer.Argument(...),
    format: str = typer.Option("text", "--format", help="text | json | dspy"),
    version: int = typer.Option(None, "--version"),
    sessions_dir: str = SessionsDir,
) -> None:
    """Print the prompt as the model sees it (text), the session (json) or the saved DSPy program (dspy)."""
    from promptomatix.errors import UsageError

    if format not in ("text", "json", "dspy"):
        raise UsageError(f"unknown export format '{format}'", hint="use --format text, json or dspy")
    store = _store(sessions_dir)
    out = store.export(session_id, format, version=version)  # type: ignore[arg-type]
    if format != "json":
        _note_interrupted(store, session_id, version)
    typer.echo(out)


def _note_interrupted(store: Any, session_id: str, version: int | None) -> None:
    """On stderr (stdout stays the bare prompt): the exported version was saved at an interrupt."""
    from promptomatix.cli import sessions_view as view
    from promptomatix.cli.render import info

    chosen = store.load(session_id).get_version(version)
    if view.is_interrupted(chosen):
        info(f"note: v{chosen.version} is the {view.INTERRUPTED_LABEL}; `promptomatix resume {session_id}` finishes it")


@sessions_app.command("delete")
def sessions_delete(
    session_id: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", "-y", help="Don't ask."),
    sessions_dir: str = SessionsDir,
) -> None:
    """Delete a session and its cache (refused while a run is using it)."""
    from promptomatix.sessions.runlock import busy_error

    store = _store(sessions_dir)
    store.require(session_id)  # not `load`: a corrupt session must be deletable, as its error advises
    live = store.live_run(session_id)
    if live:  # refuse before asking; `delete` checks again under the lock
        raise busy_error(session_id, live)
    if not yes and not typer.confirm(f"delete session {session_id}?"):
        raise typer.Abort()
    store.delete(session_id)
    typer.echo(f"deleted {session_id}")


@feedback_app.command("add")
def feedback_add(
    session_id: str = typer.Argument(...),
    comment: str = typer.Option(None, "--comment", "-c", help="What to change."),
    text: str = typer.Option(None, "--text", "-t", help="The span of the prompt the comment is about (quoted)."),
    start: int = typer.Option(None, "--start", min=0),
    end: int = typer.Option(None, "--end", min=0),
    version: int = typer.Option(None, "--version", help="The version the span refers to (default: latest)."),
    sessions_dir: str = SessionsDir,
) -> None:
    """Add a comment on a span of the prompt (--text or --start/--end) or on the whole prompt."""
    from promptomatix.errors import UsageError
    from promptomatix.sessions.feedback import add_feedback

    if comment is None and text is not None and start is None:
        comment, text = text, None  # `feedback add ID --text "too verbose"`: a general comment
    if not comment:
        raise UsageError("no feedback given", hint='pass --comment "what to change" (and --text for a span)')
    item = add_feedback(_store(sessions_dir), session_id, comment=comment, text=text, start=start, end=end,
                        version=version)  # fmt: skip
    span = f' on "{item.text}" [{item.start}:{item.end}]' if item.text else ""
    typer.echo(f"added {item.id}{span}; apply it with `promptomatix refine {session_id}`")


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
    for f in items:
        where = f' "{f.text}" [{f.start}:{f.end}]' if f.text else ""
        typer.echo(f"{f.id}\t{f.status}\t{f.source}\tv{f.version}{where}: {f.comment}")
    if not items:
        typer.echo("no feedback")


@feedback_app.command("generate")
def feedback_generate(
    session_id: str = typer.Argument(...),
    api_key: str = run_opts.API_KEY,
    api_base: str = run_opts.API_BASE,
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
    for f in items:
        typer.echo(f"{f['id']}: {f['comment']}")


@feedback_app.command("dismiss")
def feedback_dismiss(
    session_id: str = typer.Argument(...),
    ids: list[str] = typer.Argument(..., help="Feedback ids, e.g. fb1 fb3."),
    sessions_dir: str = SessionsDir,
) -> None:
    """Dismiss feedback items so refine ignores them."""
    from promptomatix.sessions.feedback import dismiss_feedback

    _store(sessions_dir).update(session_id, lambda s: dismiss_feedback(s, ids))
    typer.echo(f"dismissed {', '.join(ids)}")


def register(app: typer.Typer) -> None:
    app.add_typer(sessions_app, name="sessions")
    app.add_typer(feedback_app, name="feedback")
