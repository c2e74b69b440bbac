"""The human reports of `optimize`, `refine` and `resume` (and `--dry-run`). Prompts are escaped: `[system]` and
`[user]` are text, not rich markup.

The verdict is stated, never left to be read off two numbers: errors in the held-out scoring make a comparison
unreliable, and a result with errors is never called an improvement.
"""

from __future__ import annotations

from typing import Any

from promptomatix.cli.render import console, print_panel
from promptomatix.cli.sessions_view import estimated_note


def _fmt_ci(s: Any) -> str:
    from promptomatix.cli.render import safe as escape

    if not s:
        return "n/a"
    errors = f", {s.n_errors} errored" if s.n_errors else ""
    return escape(f"{s.mean:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}] n={s.n}{errors}")


def _num(x: float | None) -> str:
    return f"{x:.3f}" if x is not None else "n/a"


def verdict_line(r: Any) -> str:
    """One line saying what the held-out rows show, in words."""
    m = r.metrics
    a, b = m.initial_test_score, m.optimized_test_score
    split = f"held-out {m.test_split}"
    if getattr(r, "no_change", False):
        return f"verdict: no change — the refine ended with version {r.kept_version}'s prompt; no new version"
    if r.kept_version is not None:
        line = (f"verdict: the search's result was worse than version {r.kept_version} on the {split} and was not "
                f"saved (`--json` has it as candidate_prompt); version {r.kept_version} stays latest")  # fmt: skip
        v = getattr(r, "verdict", None)
        if v is not None and r.best_prompt != r.initial_prompt:  # a resume: the saved version against the initial
            line += f" (version {r.kept_version} against the initial prompt: {v.summary()})"
        return line
    v = getattr(r, "verdict", None)
    if v is not None:
        line = "verdict: " + v.summary()
        note = v.length_note()
        return line + (f"; {note}" if note else "")
    if a is None or b is None:
        return f"verdict: no {split} score (the budget ran out), so no comparison"
    if a.n_errors or b.n_errors:
        return f"verdict: unreliable — rows errored in the {split} scoring; not counted as an improvement"
    if r.best_prompt == r.initial_prompt:
        return "verdict: no candidate beat the initial prompt on valid; it is kept as the result"
    diff = b.mean - a.mean
    if r.improved:
        return f"verdict: higher on the {split} by {diff:+.3f} (n={b.n}; see the 95% CIs)"
    return f"verdict: not higher on the {split} ({diff:+.3f}, n={b.n})"


def result_report(r: Any) -> None:
    """The final report of a run: prompt, diff, scores, verdict, notes, usage and the next step."""
    import difflib

    from rich.table import Table

    from promptomatix.cli.render import safe as escape

    c = console()
    m = r.metrics
    shown = r.best_prompt
    title = f"optimized prompt (session {r.session_id}, version {r.version})"
    if getattr(r, "no_change", False):
        title = f"prompt (session {r.session_id}; no change from version {r.kept_version})"
    elif r.kept_version is not None:  # the result is the kept version; the rejected candidate is in --json
        title = f"prompt (session {r.session_id}; version {r.kept_version} stays latest)"
    diff = "\n".join(
        difflib.unified_diff(r.initial_prompt.splitlines(), shown.splitlines(), "initial", "optimized", lineterm="", n=2)
    )
    print_panel(c, escape(shown), title)  # wrapped, never cropped: the user copies this prompt
    if diff:
        print_panel(c, escape(diff), "initial → optimized")
    t = Table("", "initial", "optimized")
    t.add_row("valid (penalized)", _num(m.initial_prompt_score_penalized), _num(m.optimized_prompt_score_penalized))
    t.add_row("valid (raw)", _num(m.initial_prompt_score), _num(m.optimized_prompt_score))
    t.add_row(f"held-out {m.test_split} (95% CI)", _fmt_ci(m.initial_test_score), _fmt_ci(m.optimized_test_score))
    c.print(t, soft_wrap=False)  # a narrow terminal wraps the cells; soft wrap cropped them
    c.print(escape(verdict_line(r)))
    for note in [*r.notes, *r.data_report.get("notes", [])]:
        c.print("[yellow]note:[/] " + escape(str(note)))
    c.print(
        escape(
            f"backend {r.backend} · task {r.task_type} · {r.rounds_completed} rounds, {r.n_candidates} candidates · "
            f"stop: {r.stop_reason}\ncalls {m.calls} ({m.cached_calls} cached) · tokens {m.tokens}"
            f"{estimated_note(m.estimated_calls)} · cost ${m.cost:.4f} · time {m.time_taken:.1f} s"
        )
    )
    if r.assumptions:
        c.print("[dim]assumed: " + escape("; ".join(r.assumptions)) + "[/]")
    c.print(
        f"next: promptomatix feedback add {r.session_id} --text '…' --comment '…' && promptomatix refine {r.session_id}"
    )


def dry_run_report(d: Any) -> None:
    """What `--dry-run` shows: the spec, the rows, the data notes and the estimated calls."""
    from rich.table import Table

    from promptomatix.cli.render import safe as escape

    c = console()
    c.print(
        f"[bold]task type[/] {d.task_type}   [bold]inputs[/] {escape(', '.join(d.input_fields))}   "
        f"[bold]outputs[/] {escape(', '.join(d.output_fields))}"
    )
    if d.labels:
        c.print(f"[bold]labels[/] {escape(', '.join(d.labels))}")
    c.print(f"[bold]initial prompt[/] {escape(d.initial_prompt)}")
    for a in d.assumptions:
        c.print(f"[dim]assumed: {escape(a)}[/]")
    for split, rows in d.rows.items():
        t = Table(*(d.input_fields + d.output_fields), title=f"{split} ({len(rows)} rows)")
        for row in rows[:12]:
            t.add_row(*(escape(str(row.get(f, ""))[:80]) for f in d.input_fields + d.output_fields))
        if len(rows) > 12:
            t.add_row(*(["…"] * len(d.input_fields + d.output_fields)))
        c.print(t)
    for note in d.data_report.get("notes", []):
        c.print(f"[yellow]note:[/] {escape(str(note))}")
    est = d.estimated_calls
    c.print(
        "estimated LM calls: "
        + ", ".join(f"{k} {v}" for k, v in est.items() if k != "total")
        + f" → total about {est['total']} (spent so far: {d.calls_so_far})"
    )
    for line in getattr(d, "search_plan", []):
        c.print(escape(line))
    if d.session_id:
        c.print(f"next: promptomatix resume {d.session_id} (runs the optimization on exactly this spec and data)")
