"""`promptomatix optimize | refine | resume`: run the pipeline with a live progress line and a final report."""

from __future__ import annotations

import json
from typing import Any

import typer

from promptomatix.cli.fakes import clients_from_env
from promptomatix.cli.render import console, err_console, info, print_json

_HELP_ALIASES = "Upstream's underscore spellings (--model_name, --synthetic_data_size, ...) are accepted too."


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return out or None


class ProgressView:
    """Renders ProgressEvents: a spinner line with stage, round, best score and calls/cost against the budget."""

    def __init__(self, enabled: bool, max_calls: int | None, max_usd: float | None) -> None:
        self.enabled = enabled
        self.max_calls = max_calls
        self.max_usd = max_usd
        self.status: Any = None

    def __enter__(self) -> ProgressView:
        if self.enabled:
            self.status = err_console().status("starting", spinner="dots")
            self.status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.status is not None:
            self.status.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        if not self.enabled:
            return
        calls = f"{event.calls}" + (f"/{self.max_calls}" if self.max_calls else "")
        cost = f"${event.cost_usd or 0:.4f}" + (f"/${self.max_usd:.2f}" if self.max_usd else "")
        rnd = f" round {event.round}/{event.total_rounds}" if event.round else ""
        best = f" best {event.best_score:.3f}" if event.best_score is not None else ""
        line = f"[{event.stage}]{rnd}{best} · calls {calls} · {cost} · {event.message}"
        from rich.markup import escape

        if self.status is not None:
            self.status.update(escape(line))
        if (
            event.stage in ("spec", "data", "baseline", "confirm", "final", "stopped", "model")
            or "done" in event.message
        ):
            err_console().print(f"[dim]{escape(line)}[/]")


def _render_result(r: Any) -> None:
    """The final report. Prompts are escaped: `[system]` / `[user]` are text, not rich markup."""
    import difflib

    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    c = console()
    m = r.metrics
    diff = "\n".join(
        difflib.unified_diff(
            r.initial_prompt.splitlines(), r.best_prompt.splitlines(), "initial", "optimized", lineterm="", n=2
        )
    )
    c.print(Panel(escape(r.best_prompt), title=f"optimized prompt (session {r.session_id}, version {r.version})"))
    if diff:
        c.print(Panel(escape(diff), title="initial → optimized"))
    elif r.best_prompt == r.initial_prompt:
        c.print("no candidate beat the initial prompt on valid: it is kept as the result")
    t = Table("", "initial", "optimized")

    def fmt(s: Any) -> str:
        return escape(f"{s.mean:.3f} [{s.ci_low:.2f}, {s.ci_high:.2f}] n={s.n}") if s else "n/a"

    def num(x: float | None) -> str:
        return f"{x:.3f}" if x is not None else "n/a"

    t.add_row("valid (penalized)", num(m.initial_prompt_score), num(m.optimized_prompt_score))
    t.add_row("valid (raw)", num(m.initial_prompt_score_raw), num(m.optimized_prompt_score_raw))
    t.add_row(f"held-out {m.test_split} (95% CI)", fmt(m.initial_test_score), fmt(m.optimized_test_score))
    c.print(t)
    c.print(
        escape(
            f"backend {r.backend} · task {r.task_type} · {r.rounds_completed} rounds, {r.n_candidates} candidates · "
            f"stop: {r.stop_reason}\ncalls {m.calls} ({m.cached_calls} cached) · tokens {m.tokens} · "
            f"cost ${m.cost:.4f} · time {m.time_taken:.1f} s"
        )
    )
    if r.assumptions:
        c.print("[dim]assumed: " + escape("; ".join(r.assumptions)) + "[/]")
    c.print(
        f"next: promptomatix feedback add {r.session_id} --text '…' --comment '…' && promptomatix refine {r.session_id}"
    )


def _render_dry_run(d: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

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
        c.print(f"[dim]note: {escape(note)}[/]")
    est = d.estimated_calls
    c.print(
        "estimated LM calls: "
        + ", ".join(f"{k} {v}" for k, v in est.items() if k != "total")
        + f" → total ≤ {est['total']} (spent so far: {d.calls_so_far})"
    )
    if d.session_id:
        c.print(f"next: promptomatix resume {d.session_id} (runs the optimization on exactly this spec and data)")


def register(app: typer.Typer) -> None:
    @app.command("optimize", help="Optimize a prompt for a task described in one sentence. " + _HELP_ALIASES)
    def optimize(
        raw_input: str = typer.Argument(None, help='The task, e.g. "Classify the sentiment of a movie review".'),
        raw_input_opt: str = typer.Option(None, "--raw-input", "--raw_input", "--human_input", hidden=True),
        model: str = typer.Option(
            None, "--model", "--model_name", "-m", help="Task model (default local/smollm2-135m)."
        ),
        teacher_model: str = typer.Option(None, "--teacher-model", "--teacher_model", "--config_model_name"),
        judge_model: str = typer.Option(None, "--judge-model", "--judge_model"),
        api_key: str = typer.Option(None, "--api-key", "--model_api_key", envvar="PROMPTOMATIX_API_KEY"),
        api_base: str = typer.Option(None, "--api-base", "--model_api_base"),
        backend: str = typer.Option("simple_meta_prompt", "--backend", help="simple_meta_prompt | dspy"),
        dspy_module: str = typer.Option("predict", "--dspy-module", "--dspy_module", help="predict|cot|pot|react"),
        dspy_optimizer: str = typer.Option(
            "miprov2", "--dspy-optimizer", "--dspy_optimizer", help="miprov2|gepa|bootstrap|labeled"
        ),
        search_type: str = typer.Option("quick", "--search-type", "--search_type", help="quick|moderate|heavy"),
        rounds: int = typer.Option(None, "--rounds", min=0),
        candidates: int = typer.Option(None, "--candidates", "--candidates-per-round", min=1),
        minibatch_size: int = typer.Option(None, "--minibatch-size", "--minibatch_size", min=1),
        meta_prompt: list[str] = typer.Option(None, "--meta-prompt", help="A meta-prompt template file (repeatable)."),
        task_type: str = typer.Option(None, "--task-type", "--task_type"),
        task_description: str = typer.Option(None, "--task-description", "--task_description"),
        input_fields: list[str] = typer.Option(None, "--input-fields", "--input_fields", help="Comma-separated."),
        output_fields: list[str] = typer.Option(None, "--output-fields", "--output_fields", help="Comma-separated."),
        labels: list[str] = typer.Option(None, "--labels", help="Comma-separated label set."),
        output_format: str = typer.Option(None, "--output-format", "--output_format"),
        sample_data: str = typer.Option(None, "--sample-data", "--sample_data", help="JSON rows."),
        initial_prompt: str = typer.Option(None, "--initial-prompt", "--initial_prompt"),
        data: str = typer.Option(
            None, "--data", "--huggingface_dataset_name", help="CSV/JSON/JSONL or hf:NAME[:CFG][@SPLIT]."
        ),
        train_path: str = typer.Option(None, "--local-train-data-path", "--local_train_data_path"),
        test_path: str = typer.Option(None, "--local-test-data-path", "--local_test_data_path"),
        load_data_local: bool = typer.Option(False, "--load_data_local", hidden=True),
        synthetic_data_size: int = typer.Option(30, "--synthetic-data-size", "--synthetic_data_size", min=0),
        verify_synthetic: bool = typer.Option(
            False, "--verify-synthetic", help="A second teacher pass keeps only examples it judges correct."
        ),
        train_data_size: int = typer.Option(None, "--train-data-size", "--train_data_size", min=0),
        valid_data_size: int = typer.Option(None, "--valid-data-size", "--valid_data_size", min=0),
        test_data_size: int = typer.Option(None, "--test-data-size", "--test_data_size", min=0),
        train_ratio: float = typer.Option(None, "--train-ratio", "--train_ratio"),
        lambda_penalty: float = typer.Option(0.005, "--lambda", "--lambda-penalty", "--lambda_penalty", min=0.0),
        metric: str = typer.Option(None, "--metric", help="A custom metric as module:function or file.py:function."),
        max_calls: int = typer.Option(None, "--max-calls", min=0),
        max_usd: float = typer.Option(None, "--max-usd", min=0.0),
        max_minutes: float = typer.Option(None, "--max-minutes"),
        max_tokens: int = typer.Option(None, "--max-tokens", min=0),
        seed: int = typer.Option(0, "--seed"),
        threads: int = typer.Option(4, "--threads", min=1),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show spec, data and estimated calls; don't optimize."),
        json_: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        from promptomatix.config import RunConfig
        from promptomatix.errors import UsageError
        from promptomatix.pipeline import Run
        from promptomatix.result import DryRunReport

        task = raw_input or raw_input_opt
        if not task and not data and not train_path:
            raise UsageError("no task given", hint='pass it in quotes: promptomatix optimize "Classify ..."')
        samples = json.loads(sample_data) if sample_data and sample_data.strip().startswith("[") else sample_data
        cfg = RunConfig.from_kwargs(
            raw_input=task or f"Learn the task shown by the data in {data or train_path}",
            model=model, teacher_model=teacher_model, judge_model=judge_model, api_key=api_key, api_base=api_base,
            backend=backend, dspy_module=dspy_module, dspy_optimizer=dspy_optimizer, search_type=search_type,
            rounds=rounds, candidates_per_round=candidates, minibatch_size=minibatch_size,
            meta_prompts=list(meta_prompt or []), task_type=task_type, task_description=task_description,
            input_fields=_split(input_fields), output_fields=_split(output_fields), labels=_split(labels),
            output_format=output_format, sample_data=samples, initial_prompt=initial_prompt, data=data,
            local_train_data_path=train_path, local_test_data_path=test_path,
            synthetic_data_size=synthetic_data_size, verify_synthetic=verify_synthetic, train_data_size=train_data_size,
            valid_data_size=valid_data_size, test_data_size=test_data_size, train_ratio=train_ratio,
            lambda_penalty=lambda_penalty, metric=metric, max_calls=max_calls, max_usd=max_usd,
            max_minutes=max_minutes, max_tokens=max_tokens, seed=seed, num_threads=threads,
            sessions_dir=sessions_dir, dry_run=dry_run,
        )  # fmt: skip
        with ProgressView(not (json_ or quiet), max_calls, max_usd) as view:
            result = Run(cfg, progress=view, clients=clients_from_env()).execute()
        if isinstance(result, DryRunReport):
            print_json(result.model_dump(mode="json")) if json_ else _render_dry_run(result)
            return
        print_json(result.to_json_dict()) if json_ else _render_result(result)

    @app.command("refine", help="Re-optimize a session from its latest version and its open feedback.")
    def refine_cmd(
        session_id: str = typer.Argument(...),
        backend: str = typer.Option(None, "--backend"),
        search_type: str = typer.Option(None, "--search-type", "--search_type"),
        rounds: int = typer.Option(None, "--rounds", min=0),
        api_key: str = typer.Option(None, "--api-key", envvar="PROMPTOMATIX_API_KEY"),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        json_: bool = typer.Option(False, "--json"),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
    ) -> None:
        from promptomatix.followup import refine
        from promptomatix.sessions import SessionStore

        with ProgressView(not (json_ or quiet), None, None) as view:
            result = refine(
                session_id, store=SessionStore(sessions_dir), progress=view, api_key=api_key,
                clients=clients_from_env(), backend=backend, search_type=search_type, rounds=rounds,
            )  # fmt: skip
        if result.feedback_applied and not json_:
            info(f"applied feedback: {', '.join(result.feedback_applied)}")
        print_json(result.to_json_dict()) if json_ else _render_result(result)

    @app.command("resume", help="Continue an interrupted run; calls already made replay from the session's cache.")
    def resume_cmd(
        session_id: str = typer.Argument(...),
        api_key: str = typer.Option(None, "--api-key", envvar="PROMPTOMATIX_API_KEY"),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        json_: bool = typer.Option(False, "--json"),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
    ) -> None:
        from promptomatix.followup import resume
        from promptomatix.sessions import SessionStore

        with ProgressView(not (json_ or quiet), None, None) as view:
            result = resume(
                session_id, store=SessionStore(sessions_dir), progress=view, api_key=api_key, clients=clients_from_env()
            )
        print_json(result.to_json_dict()) if json_ else _render_result(result)
