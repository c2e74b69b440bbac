"""Dry-run estimate vs the calls a run really makes, on every backend and preset, with fake models.

For each configuration the same task and rows go through `process_input(dry_run=True)` (the estimate a user sees)
and then through a real run in a fresh session (so no cache is shared); ratio = estimated / actual LM calls, the
goal being 0.85–1.15. The fake task model is the engine benchmark's (benchmarks/engine.py): right when its
instructions say "complains" or demos are shown. Two fake teachers:
- varied (the default): every proposal is new, as a teacher sampling at temperature > 0 writes; MIPROv2's and
  GEPA's calls depend on how many programs are new, not on how good they are, and the meta backend's on how many
  of its slots give a candidate (since session 16 an empty slot tries other strategies and each round promotes
  all but one, so a real teacher's refused or repeated rewrites no longer leave a round short).
- echo: the engine's fixed rewrite, so later rewrites repeat earlier ones: a teacher whose every rewrite after the
  first is refused (the meta backend was measured against it before session 16).

    python -m benchmarks.estimate [--configs meta-quick,dspy-miprov2] [--sizes 12,12,20] [--max-calls N] [--out F]
    python -m benchmarks.estimate --model local/smollm2-135m --teacher local/qwen2.5-coder-0.5b ...  # real models
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.engine import GOOD, _requested, fake_clients, quiet_dspy, synthetic_rows
from benchmarks.report import machine_info
from promptomatix.lm.fake import FakeLM

CONFIGS: dict[str, dict[str, Any]] = {
    "meta-quick": {"backend": "simple_meta_prompt", "search_type": "quick"},
    "meta-moderate": {"backend": "simple_meta_prompt", "search_type": "moderate"},
    "meta-heavy": {"backend": "simple_meta_prompt", "search_type": "heavy"},
    "dspy-miprov2": {"backend": "dspy", "dspy_optimizer": "miprov2", "search_type": "quick"},
    "dspy-bootstrap": {"backend": "dspy", "dspy_optimizer": "bootstrap", "search_type": "quick"},
    "dspy-gepa": {"backend": "dspy", "dspy_optimizer": "gepa", "search_type": "quick"},
    "dspy-labeled": {"backend": "dspy", "dspy_optimizer": "labeled", "search_type": "quick"},
    "dspy-miprov2-moderate": {"backend": "dspy", "dspy_optimizer": "miprov2", "search_type": "moderate"},
    "dspy-gepa-moderate": {"backend": "dspy", "dspy_optimizer": "gepa", "search_type": "moderate"},
    "dspy-bootstrap-rs": {"backend": "dspy", "dspy_optimizer": "bootstrap", "search_type": "moderate"},
}
TASK = "Classify the sentiment of a movie review as positive or negative"
TEACHERS = ("varied", "echo")
KEEP_SESSIONS: str | None = None  # --keep-sessions: each run's session stays there, to read its candidates


def default_teacher(config: str) -> str:
    """Every optimizer's fake teacher writes a new answer each time, as a real one sampling at temperature > 0 does
    (the meta backend's was an echo, whose every answer its guards refuse: a run unlike any real one once an empty
    slot tries other strategies)."""
    return "varied"


def varied_clients() -> dict[str, FakeLM]:
    """The engine's fake task model, and a teacher whose every proposal is new (as a real teacher sampling at
    temperature > 0 writes): the same good instruction with a numbered, fixed-width variant tag, so candidates
    are distinct (their rows are not cache hits) but equally right and equally long."""
    count = itertools.count(1)

    def teacher(messages: list[dict[str, str]]) -> str:
        text = f"{GOOD} Variant {next(count):04d}."
        fields = _requested(messages)
        return json.dumps({f: text for f in fields} if fields else {"prompt": text})

    clients = fake_clients(0.0)
    clients["teacher"] = FakeLM(default=teacher, model="fake/teacher")
    return clients


def _run(config: str, sizes: tuple[int, int, int], *, dry_run: bool, max_calls: int | None, seed: int,
         teacher: str = "varied", model: str | None = None, progress: Any = None) -> Any:  # fmt: skip
    """One dry or real run: fake models on the synthetic reviews, or (`model`) a real task model and the teacher
    `teacher` on the benchmark's sentiment rows."""
    from promptomatix.api import process_input

    n_train, n_valid, n_test = sizes
    if model is None:
        data: dict[str, Any] = {
            "raw_input": TASK, "train_data": synthetic_rows(n_train), "valid_data": synthetic_rows(n_valid, 1000),
            "test_data": synthetic_rows(n_test, 2000), "input_fields": ["review"], "output_fields": ["label"],
            "labels": ["positive", "negative"], "task_type": "classification",
            "clients": fake_clients(0.0) if teacher == "echo" else varied_clients(),
        }  # fmt: skip
    else:
        from benchmarks.data import load_task

        task = load_task("sentiment", sizes={"train": n_train, "valid": n_valid, "test": n_test}, seed=seed)
        data = {
            "raw_input": task["description"], "train_data": task["train"], "valid_data": task["valid"],
            "test_data": task["test"], "input_fields": task["input_fields"], "output_fields": task["output_fields"],
            "labels": task["labels"], "task_type": task["task_type"], "model": model, "teacher_model": teacher,
        }  # fmt: skip
    if KEEP_SESSIONS is not None:
        return process_input(**data, seed=seed, sessions_dir=tempfile.mkdtemp(dir=KEEP_SESSIONS), dry_run=dry_run,
                             max_calls=max_calls, progress=progress, **CONFIGS[config])  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pmx-estimate-") as tmp:
        return process_input(**data, seed=seed, sessions_dir=tmp, dry_run=dry_run, max_calls=max_calls,
                             progress=progress, **CONFIGS[config])  # fmt: skip


def measure(config: str, sizes: tuple[int, int, int] = (12, 12, 20), *, max_calls: int | None = None,
            seed: int = 0, teacher: str | None = None, model: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One configuration: the dry run's estimate by stage, the real run's calls, and their ratio."""
    teacher = teacher or default_teacher(config)
    dry = _run(config, sizes, dry_run=True, max_calls=max_calls, seed=seed, teacher=teacher, model=model)
    t0 = time.perf_counter()
    marks: dict[str, int] = {}  # calls when the optimizer starts (its baseline) and when held-out scoring starts

    def progress(ev: Any) -> None:
        if ev.stage in ("baseline", "final", "plan"):
            marks.setdefault("final" if ev.stage == "final" else "start", ev.calls)

    real = _run(config, sizes, dry_run=False, max_calls=max_calls, seed=seed, teacher=teacher, model=model,
                progress=progress)  # fmt: skip
    m = real.metrics
    est = dict(dry.estimated_calls)
    opt = marks["final"] - marks["start"] if {"final", "start"} <= marks.keys() else None
    return {
        "config": config,
        "sizes": list(sizes),
        "max_calls": max_calls,
        "teacher": teacher,
        "model": model or "fake",
        "seed": seed,
        "estimated": est,
        "search_plan": list(getattr(dry, "search_plan", [])),
        "actual_calls": m.calls,
        "actual_cached": m.cached_calls,
        "calls_by_role": {r: u["calls"] for r, u in m.usage_by_role.items()},
        "rounds": real.rounds_completed,
        "stop_reason": real.stop_reason,
        "ratio": round(est["total"] / m.calls, 2) if m.calls else None,
        "actual_optimize": opt,
        "optimize_ratio": round(est.get("optimize", 0) / opt, 2) if opt else None,
        "wall_s": round(time.perf_counter() - t0, 2),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    out = ["| config | rows (train/valid/test) | max calls | estimate (optimize + rest) | actual calls (cached) "
           "| ratio | within ±15% | optimize stage: estimate / actual (ratio) |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        est = r["estimated"]
        ok = r["ratio"] is not None and 0.85 <= r["ratio"] <= 1.15
        teacher = "" if r.get("teacher") in (None, default_teacher(r["config"])) else f" ({r['teacher']})"
        out.append(
            f"| {r['config']}{teacher} | {'/'.join(map(str, r['sizes']))} | {r['max_calls'] or '-'} | {est['total']} "
            f"({est.get('optimize', 0)} + {est['total'] - est.get('optimize', 0)}) | {r['actual_calls']} "
            f"({r['actual_cached']}) | **{r['ratio']}** | {'yes' if ok else 'no'} | {est.get('optimize', 0)} / "
            f"{r.get('actual_optimize')} ({r.get('optimize_ratio')}) |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.estimate", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}")
    p.add_argument("--sizes", default="12,12,20", help="train,valid,test rows; several as 12,12,20;34,26,100")
    p.add_argument("--max-calls", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--teacher",
        default=None,
        help="fake teacher for every config: varied or echo (default: varied, a new answer each time; see above); "
        "with --model: the teacher model",
    )
    p.add_argument(
        "--model", default=None, help="a real task model (e.g. local/smollm2-135m) on the benchmark's sentiment rows"
    )
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    p.add_argument("--keep-sessions", default=None, help="keep each run's session under this directory")
    args = p.parse_args(argv)
    if args.model is None and args.teacher not in (None, *TEACHERS):
        p.error(f"--teacher must be one of {', '.join(TEACHERS)} with the fake task model")
    if args.model is not None and args.teacher is None:
        p.error("--model needs --teacher MODEL (e.g. local/qwen2.5-coder-0.5b)")
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown config(s) {unknown}; known: {', '.join(CONFIGS)}")
    quiet_dspy()
    global KEEP_SESSIONS
    KEEP_SESSIONS = args.keep_sessions
    rows: list[dict[str, Any]] = []
    machine = machine_info()
    for size in args.sizes.split(";"):
        sizes = tuple(int(x) for x in size.split(","))
        for c in configs:
            rows.append(measure(c, sizes, max_calls=args.max_calls, seed=args.seed, teacher=args.teacher,
                                model=args.model))  # type: ignore[arg-type]  # fmt: skip
            print(markdown(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)  # slow real runs: as they end
            if args.out:  # written after every row, so an interrupted real-model run keeps what it measured
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps({"machine": machine, "estimate": rows}, indent=1) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
