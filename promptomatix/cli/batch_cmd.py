"""`promptomatix batch JOBS`: many optimizations from one file, locally or on Ray, with a summary table."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from promptomatix.cli.render import console, err_console, error_line, visible
from promptomatix.cli.usage import track_value

_HELP = (
    "Run every job of a YAML/JSONL file (the options of `optimize`, with a matrix form), each in its own session. "
    "A re-run skips completed jobs and resumes interrupted ones. Exit 0 only when every job completed."
)

_RAY_ADDRESS_HELP = "IP:PORT of a Ray head; default $RAY_ADDRESS, else a local Ray is started."
_EVAL_ACTORS_HELP = (
    "With ray: serve each task model from N Ray actors (distributed evaluation); 0 = each job calls its model itself."
)


def _fake_script() -> dict[str, Any] | None:
    from promptomatix.cli.fakes import ENV_VAR
    from promptomatix.errors import ConfigurationError

    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigurationError(f"cannot read the fake model script {path} ({e})", hint=f"unset {ENV_VAR}") from None


def _pools(jobs: list[Any], n: int, per_actor: int, api_key: str | None, fake: dict[str, Any] | None) -> dict:
    from promptomatix.batch.ray_pool import make_pool
    from promptomatix.config import RunConfig

    pools: dict[str, Any] = {}
    for job in jobs:
        cfg = RunConfig.from_kwargs(**job.options)
        model = str(job.options.get("model") or job.options.get("model_name"))
        if model not in pools:
            pools[model] = make_pool(cfg.model, n, per_actor=per_actor, api_key=api_key, api_base=cfg.api_base,
                                     fake_role=(fake or {}).get("task") if fake else None)  # fmt: skip
    return pools


class _Progress:
    """Jobs done / total on stderr, and one line per finished job."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled

    def __call__(self, kind: str, job: Any, detail: Any) -> None:
        if not self.enabled:
            return
        from rich.markup import escape

        if kind in ("skipped", "finished"):
            self.done += 1
            what = "skipped (completed before)" if kind == "skipped" else detail.status
            extra = f" · {detail.verdict}" if detail.verdict else ""
            extra += f" · {detail.error}" if detail.error and detail.status != "completed" else ""
            err_console().print(escape(f"[{self.done}/{self.total}] {job.name}: {what}{extra}"))
        elif kind == "retry":
            err_console().print(escape(f"[{self.done}/{self.total}] {job.name}: transient failure, attempt {detail}"))


def _num(x: float | None, fmt: str = ".3f") -> str:
    return format(x, fmt) if x is not None else "—"


def summary_lines(rows: list[Any]) -> list[str]:
    """The per-job summary as plain aligned lines, not a table: at 80 columns (and in every pipe) a 9-column table
    cropped each cell ("20261…", "senti…"), and the session id and job name are what the user copies. Each column
    is as wide as its longest value; the job name, the widest, comes last, and a long line soft-wraps, never cut."""
    header = ("session", "status", "verdict", "valid init→opt", "test init→opt", "calls", "cost", "time", "job")
    table = [header]
    for r in rows:
        status = r.status + (" (skipped)" if r.skipped else "") + (f" ×{r.attempts}" if r.attempts > 1 else "")
        table.append((
            r.session_id or "—", status, visible(r.verdict or "—"),
            f"{_num(r.initial_valid)}→{_num(r.optimized_valid)}", f"{_num(r.initial_test)}→{_num(r.optimized_test)}",
            str(r.calls) if r.calls is not None else "—", f"${_num(r.cost_usd, '.4f')}", f"{_num(r.seconds, '.1f')} s",
            visible(r.name),
        ))  # fmt: skip
    widths = [max(len(cells[i]) for cells in table) for i in range(len(header) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(cells, widths, strict=False)), cells[-1]]) for cells in table]


def _table(rows: list[Any]) -> None:
    from rich.markup import escape

    for line in summary_lines(rows):
        typer.echo(line)
    for r in rows:
        if r.error and r.status != "completed":
            console().print(f"[red]{escape(visible(r.name))}[/]: {escape(visible(r.error))}")


def _check_command_line(executor: str, *, ray_address: str | None, ray_cpus: int | None, eval_actors: int,
                        json_: bool, csv_: bool) -> None:  # fmt: skip
    """Wrong flags are a UsageError (exit 2) before any job runs or any tracker or cluster is asked."""
    from promptomatix.errors import UsageError

    if executor not in ("local", "ray"):
        raise UsageError(f"unknown executor {executor!r}", hint="choose --executor local or --executor ray")
    for flag, given in (("--ray-address", ray_address), ("--ray-cpus", ray_cpus), ("--eval-actors", eval_actors)):
        if given and executor != "ray":
            raise UsageError(f"{flag} needs --executor ray")
    if json_ and csv_:  # one summary format on stdout (--csv was ignored)
        raise UsageError("--json and --csv cannot be used together", hint="pass one of them")


def register(app: typer.Typer) -> None:
    @app.command("batch", help=_HELP)
    def batch(
        jobs_file: Path = typer.Argument(..., help="A .yaml/.yml/.json or .jsonl file of jobs."),
        executor: str = typer.Option("local", "--executor", help="local (one after another) | ray"),
        ray_address: str = typer.Option(None, "--ray-address", help=_RAY_ADDRESS_HELP),
        ray_cpus: int = typer.Option(None, "--ray-cpus", min=1, help="CPUs of the local Ray (when one is started)."),
        job_cpus: float = typer.Option(1.0, "--job-cpus", min=0.0, help="CPUs each job's Ray task reserves."),
        eval_actors: int = typer.Option(0, "--eval-actors", min=0, help=_EVAL_ACTORS_HELP),
        actor_concurrency: int = typer.Option(4, "--actor-concurrency", min=1, help="Calls each actor serves at once."),
        retries: int = typer.Option(2, "--retries", min=0, help="Retries of a job that failed for a transient reason."),
        track: str = typer.Option(
            None, "--track", callback=track_value, help="mlflow or mlflow:URI — log each job's run to MLflow."
        ),
        experiment: str = typer.Option("promptomatix", "--experiment", help="The MLflow experiment."),
        api_key: str = typer.Option(None, "--api-key", envvar="PROMPTOMATIX_API_KEY", help="Key for every job."),
        teacher_api_key: str = typer.Option(None, "--teacher-api-key", envvar="PROMPTOMATIX_TEACHER_API_KEY",
                                            help="Key of every job's teacher (and judge)."),
        teacher_api_base: str = typer.Option(None, "--teacher-api-base",
                                             help="Teacher server of the jobs that name none in the jobs file."),
        sessions_dir: str = typer.Option(None, "--sessions-dir", envvar="PROMPTOMATIX_SESSIONS_DIR"),
        json_: bool = typer.Option(False, "--json", help="Print the per-job summary as JSON."),
        csv_: bool = typer.Option(False, "--csv", help="Print the per-job summary as CSV (not with --json)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-job progress lines."),
    ) -> None:
        from promptomatix.batch import BatchOptions, load_jobs, run_batch
        from promptomatix.batch.executors import make_executor
        from promptomatix.batch.summary import counts, rows_csv, rows_json
        from promptomatix.errors import RunInterrupted
        from promptomatix.sessions import SessionStore

        _check_command_line(executor, ray_address=ray_address, ray_cpus=ray_cpus, eval_actors=eval_actors,
                            json_=json_, csv_=csv_)  # fmt: skip
        jobs = load_jobs(jobs_file)
        tracker = None
        if track:
            from promptomatix.tracking import make_tracker

            tracker = make_tracker(track, experiment=experiment)
        fake = _fake_script()
        ex = make_executor(executor, ray_address=ray_address, ray_cpus=ray_cpus, job_cpus=job_cpus)
        pools = _pools(jobs, eval_actors, actor_concurrency, api_key, fake) if eval_actors else {}
        opts = BatchOptions(retries=retries, api_key=api_key, teacher_api_key=teacher_api_key,
                            teacher_api_base=teacher_api_base, fake_script=fake, task_pools=pools, tracker=tracker,
                            on_event=_Progress(len(jobs), not quiet))  # fmt: skip
        report = run_batch(jobs, jobs_file, SessionStore(sessions_dir), ex, opts)
        if json_:
            from promptomatix.cli.render import print_json

            print_json({"ok": report.ok, "interrupted": report.interrupted, "jobs": rows_json(report.rows)})
        elif csv_:
            typer.echo(rows_csv(report.rows), nl=False)
        else:
            _table(report.rows)
        by_status = counts(report.rows)
        if report.interrupted:  # printed once, by the CLI's error boundary (an Exit(130) was printed again there)
            raise RunInterrupted(f"interrupted; {by_status.get('completed', 0)} of {len(report.rows)} jobs completed",
                                 session_id="", hint="run the same command again to resume")  # fmt: skip
        if not report.ok:
            bad = len(report.rows) - by_status.get("completed", 0)
            error_line(f"{bad} of {len(report.rows)} jobs did not complete "
                       f"({', '.join(f'{v} {k}' for k, v in by_status.items() if k != 'completed')})")  # fmt: skip
            raise typer.Exit(1)
