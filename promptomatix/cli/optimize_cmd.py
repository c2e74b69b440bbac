"""`promptomatix optimize | refine | resume`: run the pipeline with a live progress line and a final report.

`--json` prints exactly one JSON document on stdout: during the run stdout is sent to stderr (DSPy and native
code print), and on an error stdout stays empty, the error is one line on stderr and the exit code is non-zero.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from promptomatix.cli.fakes import clients_from_env
from promptomatix.cli.render import err_console, info, print_json, run_stdout

_HELP_ALIASES = "Upstream's underscore spellings (--model_name, --synthetic_data_size, ...) are accepted too."
JSON_HELP = "Print the result as one JSON document on stdout (on an error: nothing on stdout, exit code != 0)."

# Budget and request options shared by optimize, refine, resume (and feedback generate).
MAX_CALLS = typer.Option(None, "--max-calls", min=0, help="Stop after this many model calls (HTTP attempts).")
MAX_USD = typer.Option(None, "--max-usd", min=0.0, help="Stop after spending this much (USD).")
MAX_MINUTES = typer.Option(None, "--max-minutes", min=0.0, help="Stop the search after this many minutes.")
MAX_TOKENS = typer.Option(None, "--max-tokens", min=1, help="Cap on each task-model completion (tokens).")
MAX_TOTAL_TOKENS = typer.Option(None, "--max-total-tokens", min=0, help="Token budget of the whole run.")
REQUEST_TIMEOUT = typer.Option(None, "--request-timeout", min=1.0, help="Seconds per provider request (120).")
API_KEY = typer.Option(None, "--api-key", "--model_api_key", envvar="PROMPTOMATIX_API_KEY")
API_BASE = typer.Option(None, "--api-base", "--model_api_base", help="OpenAI-compatible server URL.")
TRACK = typer.Option(
    None, "--track", help="Log the run to MLflow: mlflow or mlflow:URI (e.g. sqlite:///mlflow.db); needs [mlflow]."
)


def budget_overrides(
    max_calls: int | None,
    max_usd: float | None,
    max_minutes: float | None,
    max_tokens: int | None,
    max_total_tokens: int | None,
    request_timeout: float | None,
) -> dict[str, Any]:
    """The flags given, as run settings (None: keep the session's)."""
    given = {
        "max_calls": max_calls,
        "max_usd": max_usd,
        "max_minutes": max_minutes,
        "max_tokens": max_tokens,
        "max_total_tokens": max_total_tokens,
        "request_timeout": request_timeout,
    }
    return {k: v for k, v in given.items() if v is not None}


def parse_sample_data(text: str | None) -> Any:
    """`--sample-data` as JSON rows when it looks like JSON; a syntax error names the position and the fix."""
    from promptomatix.errors import DataError

    if not text or not text.strip().startswith(("[", "{")):
        return text
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"--sample-data is not valid JSON: {e.msg} at line {e.lineno} column {e.colno} (character {e.pos})",
            hint='pass a JSON list of objects, e.g. \'[{"review": "great film", "label": "positive"}]\'',
        ) from None
    return [rows] if isinstance(rows, dict) else rows


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return out or None


def run_and_show(json_: bool, quiet: bool, max_calls: int | None, max_usd: float | None, fn: Any) -> Any:
    """Run `fn(progress)` with the live view (or, for --json, with stdout on stderr); print the result."""
    from promptomatix.cli.report import dry_run_report, result_report
    from promptomatix.result import DryRunReport

    with run_stdout(json_), ProgressView(not (json_ or quiet), max_calls, max_usd) as view:
        result = fn(view)
    if json_:
        print_json(result.model_dump(mode="json") if isinstance(result, DryRunReport) else result.to_json_dict())
    elif isinstance(result, DryRunReport):
        dry_run_report(result)
    else:
        result_report(result)
    return result


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
        from promptomatix.cli.app import quiet_dspy_if_loaded

        quiet_dspy_if_loaded()
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
        if event.live:  # a counter refresh while calls are made: the status line only
            return
        if (
            event.stage in ("spec", "data", "plan", "baseline", "confirm", "final", "stopped", "model")
            or "done" in event.message
        ):
            err_console().print(f"[dim]{escape(line)}[/]")


def _options(values: list[str] | None) -> dict[str, Any] | None:
    """`--backend-option k=v`: v read as JSON (numbers, true/false, lists), else as a string."""
    from promptomatix.errors import UsageError

    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--backend-option {item!r} is not KEY=VALUE", hint="e.g. --backend-option rounds=2")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out or None


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
        api_key: str = API_KEY,
        api_base: str = API_BASE,
        backend: str = typer.Option(
            "simple_meta_prompt", "--backend", help="A registered backend: simple_meta_prompt, dspy, or a plugin's."
        ),
        backend_option: list[str] = typer.Option(
            None, "--backend-option", help="KEY=VALUE for the backend's own settings (repeatable; JSON values)."
        ),
        dspy_module: str = typer.Option(
            "predict", "--dspy-module", "--dspy_module", help="predict|cot|pot|react, or a plugin's module."
        ),
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
        lambda_penalty: float = typer.Option(0.005, "--lambda", "--lambda-penalty", "--lambda_penalty", min=0.0,
                                             help="Length penalty: scores × exp(-λ · instruction words)."),
        metric: str = typer.Option(None, "--metric", help="A custom metric as module:function or file.py:function."),
        max_calls: int = MAX_CALLS,
        max_usd: float = MAX_USD,
        max_minutes: float = MAX_MINUTES,
        max_tokens: int = MAX_TOKENS,
        max_total_tokens: int = MAX_TOTAL_TOKENS,
        request_timeout: float = REQUEST_TIMEOUT,
        seed: int = typer.Option(0, "--seed"),
        threads: int = typer.Option(4, "--threads", min=1),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show spec, data and estimated calls; don't optimize."),
        track: str = TRACK,
        json_: bool = typer.Option(False, "--json", help=JSON_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
    ) -> None:
        from promptomatix.config import RunConfig
        from promptomatix.errors import UsageError
        from promptomatix.pipeline import Run

        task = raw_input or raw_input_opt
        if not task and not data and not train_path:
            raise UsageError("no task given", hint='pass it in quotes: promptomatix optimize "Classify ..."')
        samples = parse_sample_data(sample_data)
        cfg = RunConfig.from_kwargs(
            raw_input=task or f"Learn the task shown by the data in {data or train_path}",
            model=model, teacher_model=teacher_model, judge_model=judge_model, api_key=api_key, api_base=api_base,
            backend=backend, backend_options=_options(backend_option), dspy_module=dspy_module,
            dspy_optimizer=dspy_optimizer, search_type=search_type, rounds=rounds, candidates_per_round=candidates, minibatch_size=minibatch_size,
            meta_prompts=list(meta_prompt or []), task_type=task_type, task_description=task_description,
            input_fields=_split(input_fields), output_fields=_split(output_fields), labels=_split(labels),
            output_format=output_format, sample_data=samples, initial_prompt=initial_prompt, data=data,
            local_train_data_path=train_path, local_test_data_path=test_path,
            synthetic_data_size=synthetic_data_size, verify_synthetic=verify_synthetic, train_data_size=train_data_size,
            valid_data_size=valid_data_size, test_data_size=test_data_size, train_ratio=train_ratio,
            lambda_penalty=lambda_penalty, metric=metric, seed=seed, num_threads=threads,
            **budget_overrides(max_calls, max_usd, max_minutes, max_tokens, max_total_tokens, request_timeout),
            sessions_dir=sessions_dir, dry_run=dry_run,
        )  # fmt: skip
        clients = clients_from_env()
        run_and_show(
            json_, quiet, max_calls, max_usd,
            lambda view: Run(cfg, progress=view, clients=clients, track=track).execute(),
        )  # fmt: skip

    @app.command("refine", help="Re-optimize a session from its latest version and its open feedback.")
    def refine_cmd(
        session_id: str = typer.Argument(...),
        backend: str = typer.Option(None, "--backend"),
        search_type: str = typer.Option(None, "--search-type", "--search_type"),
        rounds: int = typer.Option(None, "--rounds", min=0),
        api_key: str = API_KEY,
        api_base: str = API_BASE,
        max_calls: int = MAX_CALLS,
        max_usd: float = MAX_USD,
        max_minutes: float = MAX_MINUTES,
        max_tokens: int = MAX_TOKENS,
        max_total_tokens: int = MAX_TOTAL_TOKENS,
        request_timeout: float = REQUEST_TIMEOUT,
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        track: str = TRACK,
        json_: bool = typer.Option(False, "--json", help=JSON_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
    ) -> None:
        from promptomatix.followup import refine
        from promptomatix.sessions import SessionStore

        budget = budget_overrides(max_calls, max_usd, max_minutes, max_tokens, max_total_tokens, request_timeout)
        clients = clients_from_env()
        result = run_and_show(
            json_, quiet, max_calls, max_usd,
            lambda view: refine(
                session_id, store=SessionStore(sessions_dir), progress=view, api_key=api_key, api_base=api_base,
                clients=clients, track=track, backend=backend, search_type=search_type, rounds=rounds, **budget,
            ),
        )  # fmt: skip
        if result.feedback_applied and not json_:
            info(f"applied feedback: {', '.join(result.feedback_applied)}")
        elif result.no_change and not json_:
            info(f"no change: the prompt is version {result.kept_version}'s; the feedback stays open")

    @app.command("resume", help=(
        "Continue an interrupted run; calls already made replay from the session's cache. The result is compared "
        "with the best-so-far version saved at the interrupt on the same held-out rows, and when it scores lower "
        "the saved version stays the latest (the report gives both scores)."))  # fmt: skip
    def resume_cmd(
        session_id: str = typer.Argument(...),
        api_key: str = API_KEY,
        api_base: str = API_BASE,
        max_calls: int = MAX_CALLS,
        max_usd: float = MAX_USD,
        max_minutes: float = MAX_MINUTES,
        max_tokens: int = MAX_TOKENS,
        max_total_tokens: int = MAX_TOTAL_TOKENS,
        request_timeout: float = REQUEST_TIMEOUT,
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        track: str = TRACK,
        json_: bool = typer.Option(False, "--json", help=JSON_HELP),
        quiet: bool = typer.Option(False, "--quiet", "-q"),
    ) -> None:
        from promptomatix.followup import resume
        from promptomatix.sessions import SessionStore

        budget = budget_overrides(max_calls, max_usd, max_minutes, max_tokens, max_total_tokens, request_timeout)
        clients = clients_from_env()
        run_and_show(
            json_, quiet, max_calls, max_usd,
            lambda view: resume(
                session_id, store=SessionStore(sessions_dir), progress=view, api_key=api_key, api_base=api_base,
                clients=clients, track=track, **budget,
            ),
        )  # fmt: skip
