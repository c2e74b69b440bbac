"""`promptomatix sessions list|show|pick|export|delete` (and, from feedback_cmd, `promptomatix feedback …`)."""

from __future__ import annotations

from typing import Any

import typer

from promptomatix.cli.render import console, print_json, print_panel, safe, visible
from promptomatix.cli.usage import lambda_value

sessions_app = typer.Typer(help="Saved optimization sessions: list, show, pick, export, delete.", no_args_is_help=True)

SessionsDir = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR", help="Session store.")


_SHOW_VERSION_HELP = (
    "With --candidates/--pareto: the version whose run to show (default: the latest version with candidates, the "
    "one `sessions pick` picks from)."
)


_PICK_VERSION_HELP = "The version whose candidates to pick from (default: the latest version with candidates)."


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
    # Plain aligned lines, not a table: ids never wrap or get cut (they are copied into other commands). The
    # status column is as wide as its longest value ("running (pid 12345)" overflowed a fixed 11).
    statuses = [r.state if r.error is None else "?" for r in rows]
    w = max(len("status"), *map(len, statuses))
    typer.echo(f"{'session':<22}  {'created':<16}  {'status':<{w}}  {'v':>2}  {'best':>5}  {'fb':>2}  description")
    for r, status in zip(rows, statuses, strict=True):
        best = f"{r.best_score:.3f}" if r.best_score is not None else "-"
        created = r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "-"
        desc = visible(r.description if r.error is None else f"unreadable: {r.error}")
        desc = desc if len(desc) <= 60 else desc[:59] + "…"
        typer.echo(
            f"{r.session_id:<22}  {created:<16}  {status:<{w}}  {r.n_versions:>2}  {best:>5}  "
            f"{r.n_open_feedback:>2}  {desc}"
        )
    if bad := sum(r.error is not None for r in rows):  # the row cuts the reason off: say where to read it in full
        typer.echo(f"{bad} unreadable: `promptomatix sessions show ID` says why, `promptomatix sessions delete ID` "
                   "removes it")  # fmt: skip


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
    diff: tuple[int, int] = typer.Option(  # (0, 0) is "not given", not a value to show in --help
        (0, 0), "--diff", show_default=False, help="Diff two versions, e.g. --diff 1 2."
    ),
    candidates: bool = typer.Option(False, "--candidates", help="Every candidate a run tried."),
    pareto: bool = typer.Option(False, "--pareto", help="A run's quality-vs-length front."),
    version: int = typer.Option(None, "--version", help=_SHOW_VERSION_HELP),
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Versions with scores, cost and the prompt diff from each version's parent; feedback items."""
    from promptomatix.sessions.store import scrub_session_payload

    store = _store(sessions_dir)
    s = store.load(session_id)
    pairs = _diff_pairs(s, diff)  # checked before anything is printed: a bad version is one line, stdout empty
    source = _candidates_source(s, version, candidates or pareto)
    live = store.live_run(session_id)
    if json_:
        print_json({**scrub_session_payload(s.model_dump(mode="json")), "live_run": live})
        return
    _print_show(s, live, pairs)
    from promptomatix.cli.candidates_view import candidate_lines, pareto_lines

    c, latest = console(), s.latest_version()
    lines = candidate_lines(source.version, source.candidates) if candidates and source else []
    lines += pareto_lines(s, source, defaulted=version is None) if pareto and source else []
    for line in lines:  # model-written text (candidates, feedback, prompts): control characters made visible
        c.print(safe(line))
    if latest and (not pairs or _view().is_interrupted(latest)):
        title = f"prompt v{latest.version}" + _view().version_note(latest).replace(" · ", " — ")
        print_panel(c, safe(latest.prompt), title)
    for f in s.feedback:
        where = f'[{f.start}:{f.end}] "{f.text}" ' if f.text else ""
        applied = f" (applied in v{f.applied_in})" if f.applied_in else ""
        c.print(safe(f"{f.id} {f.status}{applied} {f.source} {_about(f.version)}: {where}{f.comment}"))


def _view() -> Any:
    from promptomatix.cli import sessions_view

    return sessions_view


def _about(version: int | None) -> str:
    """The version a feedback item is about; feedback given before any version existed has none ("vNone")."""
    return f"v{version}" if version is not None else "no version"


def _diff_pairs(s: Any, diff: tuple[int, int]) -> list[tuple[int, int]]:
    """The version pairs to diff: `--diff A B` (both must exist), else each version against its parent."""
    if diff == (0, 0):
        return [(v.parent, v.version) for v in s.versions if v.parent]
    for number in diff:
        s.get_version(number)  # NotFoundError naming the versions there are
    return [diff]


def _candidates_source(s: Any, version: int | None, wanted: bool) -> Any:
    """The version whose candidates --candidates/--pareto show: the one `sessions pick` would pick from."""
    from promptomatix.errors import UsageError
    from promptomatix.sessions.pick import source_version

    if version is not None and not wanted:
        raise UsageError("--version of `sessions show` goes with --candidates or --pareto",
                         hint=f"promptomatix sessions show {s.session_id} --pareto --version {version}")  # fmt: skip
    if not wanted or (version is None and not s.versions):
        return None
    return source_version(s, version)


def _print_show(s: Any, live: dict[str, Any] | None, pairs: list[tuple[int, int]]) -> None:
    """The header, state lines, one line per version (with its verdict) and the prompt diffs."""
    import difflib

    from promptomatix.sessions.models import display_status
    from promptomatix.sessions.scale import comparable_valid

    view, c = _view(), console()
    c.print(f"[bold]{s.session_id}[/] · {safe(display_status(s.status, live))} · {safe(s.description)}")
    for line in filter(None, [view.model_line(s), view.spent_line(s), *view.state_lines(s, live), _lambda_line(s)]):
        c.print(safe(line))
    for v in s.versions:
        parent = f" (from v{v.parent})" if v.parent else ""
        applied = f" · applied {', '.join(v.feedback_applied)}" if v.feedback_applied else ""
        line = (
            f"{parent} · {v.backend} · valid raw/penalized {_score(comparable_valid(s, v))} · test {_score(v.test)} "
            f"(initial {_score(v.initial_test)}) · {v.usage.calls} calls ({v.usage.cached_calls} cached) · "
            f"${v.usage.cost_usd or 0:.4f} · {v.duration_s or 0:.0f}s{applied}{view.version_note(v)}"
        )
        c.print(f"[bold]v{v.version}[/]" + safe(line))
        for extra in _verdict_lines(v):
            c.print("    " + safe(extra))
    for a, b in pairs:
        va, vb = s.get_version(a), s.get_version(b)
        text = "\n".join(difflib.unified_diff(va.prompt.splitlines(), vb.prompt.splitlines(), f"v{a}", f"v{b}",
                                              lineterm="", n=2))  # fmt: skip
        print_panel(c, safe(text) or "(identical)", f"prompt diff v{a} → v{b}")


def _lambda_line(s: Any) -> str | None:
    """The one λ every version's penalized valid score is under (a pick under another λ included)."""
    from promptomatix.sessions.scale import session_lambda

    lam = session_lambda(s)
    return None if lam is None or not s.versions else f"valid scores: raw / penalized by length under λ={lam:g}"


def _verdict_lines(v: Any) -> list[str]:
    """The paired held-out verdict of a version (outcome, diff and CI, wins/losses/ties, p, detectable size)."""
    from promptomatix.metrics.verdict import PairedVerdict
    from promptomatix.sessions.pick import picked_note

    note = picked_note(v)
    if note:
        return [note]
    if not v.verdict:
        return []
    verdict = PairedVerdict(**v.verdict)
    return [f"verdict: {verdict.summary()}", *filter(None, [verdict.length_note()])]


@sessions_app.command("pick")
def sessions_pick(
    session_id: str = typer.Argument(...),
    candidate: int = typer.Argument(None, help="A candidate id (see `sessions show ID --pareto`)."),
    lambda_: float = typer.Option(
        None, "--lambda", callback=lambda_value, help="Re-select: the best under this length penalty λ."
    ),
    version: int = typer.Option(None, "--version", help=_PICK_VERSION_HELP),
    sessions_dir: str = SessionsDir,
    json_: bool = typer.Option(False, "--json"),
) -> None:
    """Make a candidate of a run the next version, without model calls (a later refine starts from it)."""
    from promptomatix.cli.render import info
    from promptomatix.errors import UsageError
    from promptomatix.sessions.pick import pick, pick_lambda
    from promptomatix.sessions.runlock import busy_error
    from promptomatix.sessions.scale import session_lambda

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
        made["lam"] = session_lambda(s)
        if candidate is not None:
            made["p"] = pick(s, candidate, version=version)
        else:
            made["p"] = pick_lambda(s, lambda_, version=version)

    store.update(session_id, apply)
    p = made["p"]
    v = p.version
    if json_:  # the version (the existing one when none was added); the note on stderr, stdout stays one document
        if not p.added:
            info(p.message())
        print_json(v.model_dump(mode="json"))
        return
    if not p.added:
        typer.echo(p.message())
        return
    under = "" if made["lam"] is None else f" under the session's λ={made['lam']:g}"
    from promptomatix.cli.candidates_view import num

    typer.echo(f"{p.message()} (valid raw {num(v.valid.raw)}, penalized {num(v.valid.penalized)}{under}); "
               "no model calls made")  # fmt: skip


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
    if format == "dspy":
        _refuse_picked_without_program(store, session_id, version)
    out = store.export(session_id, format, version=version)  # type: ignore[arg-type]
    if format != "json":
        _note_interrupted(store, session_id, version)
    typer.echo(out)


def _refuse_picked_without_program(store: Any, session_id: str, version: int | None) -> None:
    """A candidate picked from a DSPy run has no program: say so (the store's error named only the backend)."""
    from promptomatix.sessions.pick import no_program_error

    s = store.load(session_id)
    if not s.versions:
        return  # the store's export says why there is nothing to export
    error = no_program_error(s, s.get_version(version))
    if error is not None:
        raise error


def _note_interrupted(store: Any, session_id: str, version: int | None) -> None:
    """On stderr (stdout stays the bare prompt): the exported version was saved at an interrupt."""
    from promptomatix.cli import sessions_view as view
    from promptomatix.cli.render import info

    session = store.load(session_id)
    chosen = session.get_version(version)
    if view.is_interrupted(chosen):
        finish = (f"`promptomatix resume {session_id}` finishes it" if session.status != "completed"
                  else f"the run was finished later: v{session.get_version(None).version} is the latest")  # fmt: skip
        info(f"note: v{chosen.version} is the {view.INTERRUPTED_LABEL}; {finish}")


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
    if not yes and not _confirmed(f"delete session {session_id}?"):
        from promptomatix.cli.render import info

        info(f"not deleted: {session_id}")  # exit 1 like click's "Aborted!", but saying what did not happen
        raise typer.Exit(1)
    store.delete(session_id)
    typer.echo(f"deleted {session_id}")


def _confirmed(question: str) -> bool:
    """The user's yes/no. No answer (stdin closed or not a terminal: a script, CI) is a refusal naming --yes, exit 1;
    Ctrl-C at the prompt is an interrupt, exit 130. Click makes both a silent `Abort` (it was exit 1 for both)."""
    from promptomatix.errors import SessionError

    try:
        return typer.confirm(question)
    except typer.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):
            raise KeyboardInterrupt from None
        typer.echo()  # end the prompt's line: the error is a line of its own
        raise SessionError(
            "not deleted: no answer to the question", hint="pass --yes to delete without asking"
        ) from None


def register(app: typer.Typer) -> None:
    from promptomatix.cli.feedback_cmd import feedback_app

    app.add_typer(sessions_app, name="sessions")
    app.add_typer(feedback_app, name="feedback")
