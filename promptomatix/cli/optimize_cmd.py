"""`promptomatix optimize | refine | resume`: run the pipeline with a live progress line and a final report.

`--json` prints exactly one JSON document on stdout: during the run stdout is sent to stderr (DSPy and native
code print), and on an error stdout stays empty, the error is one line on stderr and the exit code is non-zero.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from promptomatix.cli.fakes import clients_from_env
from promptomatix.cli.progress_view import ProgressView
from promptomatix.cli.render import info, print_json, run_stdout
from promptomatix.cli.upstream_opts import PARAMS as UPSTREAM_PARAMS
from promptomatix.cli.upstream_opts import shown_warnings, upstream_kwargs
from promptomatix.cli.usage import (
    calls_value,
    check_flag_conflicts,
    check_followup_values,
    positive_value,
    track_value,
)

_HELP_ALIASES = "Upstream's underscore spellings (--model_name, --synthetic_data_size, ...) are accepted too."
JSON_HELP = "Print the result as one JSON document on stdout (on an error: nothing on stdout, exit code != 0)."

# Budget and request options shared by optimize, refine, resume (and feedback generate).
MAX_CALLS = typer.Option(None, "--max-calls", callback=calls_value, help="Stop after this many model calls (HTTP attempts; x>=1).")
MAX_USD = typer.Option(None, "--max-usd", min=0.0, help="Spend at most this much (USD): a call is sent only if its worst case fits (at litellm's list price).")
MAX_MINUTES = typer.Option(None, "--max-minutes", callback=positive_value, help="Stop the search after this many minutes (x>0).")
MAX_TOKENS = typer.Option(None, "--max-tokens", "--max_tokens", min=1, help="Cap on each task-model completion (tokens).")
MAX_TOTAL_TOKENS = typer.Option(None, "--max-total-tokens", min=0, help="Token budget of the run, not exceeded: a call is sent only if its prompt's bytes + max_tokens fit.")
REQUEST_TIMEOUT = typer.Option(None, "--request-timeout", min=1.0, help="Seconds per provider request (120).")
API_KEY = typer.Option(None, "--api-key", "--model_api_key", envvar="PROMPTOMATIX_API_KEY")
API_BASE = typer.Option(None, "--api-base", "--model_api_base", help="OpenAI-compatible server URL.")
TRACK = typer.Option(
    None, "--track", callback=track_value,
    help="Log the run to MLflow: mlflow or mlflow:URI (e.g. sqlite:///mlflow.db); needs [mlflow].",
)  # fmt: skip


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
    from promptomatix.errors import DataUsageError

    if not text or not text.strip().startswith(("[", "{")):
        return text
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataUsageError(
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


_Command = TypeVar("_Command", bound=Callable[..., Any])


def _param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _option_group(*params: inspect.Parameter, last: bool = False) -> Callable[[_Command], _Command]:
    """A reusable set of options as a decorator. Typer reads a command's options from its signature, so the group
    is put in front of it (`last`: after the command's own): the top decorator's options come first in --help, as
    with stacked click options."""

    def decorate(fn: _Command) -> _Command:
        sig = inspect.signature(fn)
        kept = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        fn.__signature__ = sig.replace(parameters=[*kept, *params] if last else [*params, *kept])  # type: ignore[attr-defined]
        return fn

    return decorate


_task_options = _option_group(
    _param("raw_input", str, typer.Argument(None, help='The task, e.g. "Classify the sentiment of a movie review".')),
    _param("raw_input_opt", str, typer.Option(None, "--raw-input", "--raw_input", "--human_input", hidden=True)),
)
_model_options = _option_group(
    _param("model", str, typer.Option(
        None, "--model", "--model_name", "-m", help="Task model (default local/smollm2-135m).")),
    _param("teacher_model", str, typer.Option(None, "--teacher-model", "--teacher_model", "--config_model_name")),
    _param("judge_model", str, typer.Option(None, "--judge-model", "--judge_model")),
    _param("api_key", str, API_KEY),
    _param("api_base", str, API_BASE),
)  # fmt: skip
_search_options = _option_group(
    _param("backend", str, typer.Option(
        "simple_meta_prompt", "--backend", help="A registered backend: simple_meta_prompt, dspy, or a plugin's.")),
    _param("backend_option", list[str], typer.Option(
        None, "--backend-option", help="KEY=VALUE for the backend's own settings (repeatable; JSON values).")),
    _param("dspy_module", str, typer.Option(None, "--dspy-module", "--dspy_module",
        help="With --backend dspy: predict (default), cot, pot, react, or a plugin's module.")),
    _param("dspy_optimizer", str, typer.Option(None, "--dspy-optimizer", "--dspy_optimizer", "--trainer",
        help="With --backend dspy: miprov2 (default), gepa, bootstrap, labeled.")),
    _param("search_type", str, typer.Option("quick", "--search-type", "--search_type", help="quick|moderate|heavy")),
    _param("rounds", int, typer.Option(None, "--rounds", min=0)),
    _param("candidates", int, typer.Option(None, "--candidates", "--candidates-per-round", min=1)),
    _param("minibatch_size", int, typer.Option(None, "--minibatch-size", "--minibatch_size", min=1)),
    _param("meta_prompt", list[str], typer.Option(
        None, "--meta-prompt", help="A meta-prompt template file (repeatable).")),
)  # fmt: skip
_spec_options = _option_group(
    _param("task_type", str, typer.Option(None, "--task-type", "--task_type")),
    _param("task_description", str, typer.Option(None, "--task-description", "--task_description")),
    _param("input_fields", list[str], typer.Option(
        None, "--input-fields", "--input_fields", help="Comma-separated.")),
    _param("output_fields", list[str], typer.Option(
        None, "--output-fields", "--output_fields", help="Comma-separated.")),
    _param("labels", list[str], typer.Option(None, "--labels", help="Comma-separated label set.")),
    _param("output_format", str, typer.Option(None, "--output-format", "--output_format")),
    _param("sample_data", str, typer.Option(None, "--sample-data", "--sample_data", help="JSON rows.")),
    _param("initial_prompt", str, typer.Option(None, "--initial-prompt", "--initial_prompt")),
)  # fmt: skip
def _share(value: float | None) -> float | None:
    """A share strictly between 0 and 1 (NaN is not): a bad command line (exit 2) naming the option."""
    if value is not None and not 0.0 < value < 1.0:
        raise typer.BadParameter(f"{value} is not a share between 0 and 1 (e.g. 0.6)")
    return value


_data_options = _option_group(
    _param("data", str, typer.Option(
        None, "--data", help="CSV/JSON/JSONL or hf:NAME[:CFG][@SPLIT].")),
    _param("train_path", str, typer.Option(None, "--local-train-data-path", "--local_train_data_path")),
    _param("test_path", str, typer.Option(None, "--local-test-data-path", "--local_test_data_path")),
    _param("load_data_local", bool, typer.Option(False, "--load_data_local", hidden=True)),
    _param("synthetic_data_size", int, typer.Option(
        30, "--synthetic-data-size", "--synthetic_data_size", min=0)),
    _param("verify_synthetic", bool, typer.Option(
        False, "--verify-synthetic", help="A second teacher pass keeps only examples it judges correct.")),
    _param("train_data_size", int, typer.Option(None, "--train-data-size", "--train_data_size", min=1)),
    _param("valid_data_size", int, typer.Option(None, "--valid-data-size", "--valid_data_size", min=1)),
    _param("test_data_size", int, typer.Option(None, "--test-data-size", "--test_data_size", min=0)),
    _param("train_ratio", float, typer.Option(None, "--train-ratio", "--train_ratio", callback=_share)),
)  # fmt: skip
_scoring_options = _option_group(
    _param("lambda_penalty", float, typer.Option(
        0.005, "--lambda", "--lambda-penalty", "--lambda_penalty", min=0.0,
        help="Length penalty: scores × exp(-λ · instruction words).")),
    _param("metric", str, typer.Option(
        None, "--metric", help="A custom metric as module:function or file.py:function.")),
)  # fmt: skip
_upstream_options = _option_group(*UPSTREAM_PARAMS)
_BUDGET = (
    _param("max_calls", int, MAX_CALLS),
    _param("max_usd", float, MAX_USD),
    _param("max_minutes", float, MAX_MINUTES),
    _param("max_tokens", int, MAX_TOKENS),
    _param("max_total_tokens", int, MAX_TOTAL_TOKENS),
    _param("request_timeout", float, REQUEST_TIMEOUT),
)
_budget_options = _option_group(*_BUDGET)
_run_options = _option_group(
    _param("seed", int, typer.Option(0, "--seed")),
    _param("threads", int, typer.Option(4, "--threads", min=1)),
    _param("sessions_dir", str, typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR")),
    _param("dry_run", bool, typer.Option(
        False, "--dry-run", help="Show spec, data and estimated calls; don't optimize.")),
    _param("track", str, TRACK),
    _param("json_", bool, typer.Option(False, "--json", help=JSON_HELP)),
    _param("quiet", bool, typer.Option(False, "--quiet", "-q", help="No progress display.")),
)  # fmt: skip


def _run_config(o: dict[str, Any]) -> Any:
    """The RunConfig of `optimize`'s options: the CLI's spellings mapped onto the config's settings."""
    from promptomatix.config import RunConfig
    from promptomatix.errors import UsageError

    up = upstream_kwargs(o)
    if o["data"] is not None and up["hf_data"]:
        raise UsageError("--data and --huggingface_dataset_name name two datasets", hint="pass one of them")
    hf_data = up.pop("hf_data")
    task, train_path = o["raw_input"] or o["raw_input_opt"], o["train_path"]
    data = o["data"] if o["data"] is not None else hf_data
    if not task and not data and not train_path:
        raise UsageError("no task given", hint='pass it in quotes: promptomatix optimize "Classify ..."')
    if data is not None and not data.strip():  # an unset $DATA is not "no data" (30 synthetic rows were planned)
        raise UsageError("--data is empty", hint="pass a file, a directory or hf:NAME, or leave --data out")
    samples = parse_sample_data(o["sample_data"])
    budget = ("max_calls", "max_usd", "max_minutes", "max_tokens", "max_total_tokens", "request_timeout")
    with _wrong_value_is_usage():
        return shown_warnings(lambda: RunConfig.from_kwargs(
            raw_input=task or f"Learn the task shown by the data in {data or train_path}",
            model=o["model"], teacher_model=o["teacher_model"], judge_model=o["judge_model"], api_key=o["api_key"],
            api_base=o["api_base"], backend=o["backend"], backend_options=_options(o["backend_option"]),
            dspy_module=o["dspy_module"], dspy_optimizer=o["dspy_optimizer"], search_type=o["search_type"],
            rounds=o["rounds"], candidates_per_round=o["candidates"], minibatch_size=o["minibatch_size"],
            meta_prompts=list(o["meta_prompt"] or []), task_type=o["task_type"], task_description=o["task_description"],
            input_fields=_split(o["input_fields"]), output_fields=_split(o["output_fields"]), labels=_split(o["labels"]),
            output_format=o["output_format"], sample_data=samples, initial_prompt=o["initial_prompt"], data=data,
            local_train_data_path=train_path, local_test_data_path=o["test_path"],
            synthetic_data_size=o["synthetic_data_size"], verify_synthetic=o["verify_synthetic"],
            train_data_size=o["train_data_size"], valid_data_size=o["valid_data_size"],
            test_data_size=o["test_data_size"], train_ratio=o["train_ratio"], lambda_penalty=o["lambda_penalty"],
            metric=o["metric"], seed=o["seed"], num_threads=o["threads"],
            **budget_overrides(*(o[k] for k in budget)),
            sessions_dir=o["sessions_dir"], dry_run=o["dry_run"], **up,
        ))  # fmt: skip


@contextlib.contextmanager
def _wrong_value_is_usage() -> Iterator[None]:
    """A value no setting accepts (`--backend nope`) is a wrong command line: exit 2, like click's own checks.
    Subclasses keep exit 1 (a broken plugin's PluginError: the command line was fine)."""
    from promptomatix.errors import ConfigurationError, UsageError

    try:
        yield
    except ConfigurationError as e:
        if type(e) is not ConfigurationError:
            raise
        raise UsageError(e.message, hint=e.hint) from None


@_task_options
@_model_options
@_search_options
@_spec_options
@_data_options
@_scoring_options
@_budget_options
@_upstream_options
@_run_options
def optimize(**opts: Any) -> None:
    """Typer passes every option of the groups above as a keyword; `_run_config` reads them."""
    from promptomatix.pipeline import Run
    from promptomatix.run.inputs import check_command_line

    cfg = _run_config(opts)
    check_flag_conflicts(opts, cfg.backend)
    clients = clients_from_env()
    check_command_line(cfg, clients)  # values naming what does not exist: exit 2 before the run exists
    run_and_show(
        opts["json_"], opts["quiet"], opts["max_calls"], opts["max_usd"],
        lambda view: Run(cfg, progress=view, clients=clients, track=opts["track"]).execute(),
    )  # fmt: skip


#: What `refine` and `resume` share after their own options: credentials, budget overrides, where and how to show.
_session_options = _option_group(
    _param("api_key", str, API_KEY),
    _param("api_base", str, API_BASE),
    UPSTREAM_PARAMS[0],
    UPSTREAM_PARAMS[1],
    *_BUDGET,
    _param("sessions_dir", str, typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR")),
    _param("track", str, TRACK),
    _param("json_", bool, typer.Option(False, "--json", help=JSON_HELP)),
    _param("quiet", bool, typer.Option(False, "--quiet", "-q")),
    last=True,
)


def _followup(opts: dict[str, Any]) -> dict[str, Any]:
    """The keywords `refine` and `resume` (promptomatix.followup) take from the shared options; the session store
    is opened inside the command's error boundary (`run_and_show`), as each command does."""
    budget = budget_overrides(*(opts[p.name] for p in _BUDGET))
    teacher = {k: opts[k] for k in ("teacher_api_base", "teacher_api_key") if opts[k]}
    return {"api_key": opts["api_key"], "api_base": opts["api_base"], "clients": clients_from_env(),
            "track": opts["track"], **teacher, **budget}  # fmt: skip


@_session_options
def refine_cmd(
    session_id: str = typer.Argument(...),
    backend: str = typer.Option(None, "--backend"),
    search_type: str = typer.Option(None, "--search-type", "--search_type"),
    rounds: int = typer.Option(None, "--rounds", min=0),
    **opts: Any,
) -> None:
    """`refine`: its own signature (fewer options than optimize, and budget flags that override the session's)."""
    from promptomatix.followup import refine
    from promptomatix.sessions import SessionStore

    check_followup_values(backend, search_type)
    common, json_ = _followup(opts), opts["json_"]
    with _planned_by("refine"):
        result = run_and_show(
            json_, opts["quiet"], opts["max_calls"], opts["max_usd"],
            lambda view: refine(session_id, store=SessionStore(opts["sessions_dir"]), progress=view, backend=backend,
                                search_type=search_type, rounds=rounds, **common),
        )  # fmt: skip
    if result.feedback_applied and not json_:
        info(f"applied feedback: {', '.join(result.feedback_applied)}")
    elif result.no_change and not json_:
        info(f"no change: the prompt is version {result.kept_version}'s")  # the report's note says what stays open


@_session_options
def resume_cmd(session_id: str = typer.Argument(...), **opts: Any) -> None:
    """`resume`: the session and the budget flags only; the rest of the run's settings come from the session."""
    from promptomatix.followup import resume
    from promptomatix.sessions import SessionStore

    common = _followup(opts)
    with _planned_by("resume"):
        run_and_show(
            opts["json_"], opts["quiet"], opts["max_calls"], opts["max_usd"],
            lambda view: resume(session_id, store=SessionStore(opts["sessions_dir"]), progress=view, **common),
        )  # fmt: skip


@contextlib.contextmanager
def _planned_by(command: str) -> Iterator[None]:
    """The budget refusal's hint names only this command's flags (plan.py's PLAN_COMMAND)."""
    from promptomatix.backends.plan import PLAN_COMMAND

    token = PLAN_COMMAND.set(command)
    try:
        yield
    finally:
        PLAN_COMMAND.reset(token)


def register(app: typer.Typer) -> None:
    """Module-level commands, registered here so the CLI's plugin hook decides when they join the app."""
    app.command("optimize", help="Optimize a prompt for a task described in one sentence. " + _HELP_ALIASES)(optimize)
    app.command("refine", help="Re-optimize a session from its latest version and its open feedback.")(refine_cmd)
    app.command("resume", help=(
        "Continue an interrupted run; calls already made replay from the session's cache. The result is compared "
        "with the best-so-far version saved at the interrupt on the same held-out rows, and when it scores lower "
        "the saved version stays the latest (the report gives both scores)."))(resume_cmd)  # fmt: skip
