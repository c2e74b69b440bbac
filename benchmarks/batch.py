"""Does Ray shorten a batch? The same N jobs (a fixed-latency fake model) run one after another, then on Ray.

Each job is a full optimization (spec, data, meta rounds, held-out scoring) with the scripted fake model, whose task
calls sleep `--latency` seconds each, so a job's time is dominated by waiting on the "model", as with a real
provider. The local executor runs the jobs sequentially; the Ray executor runs them as tasks on a local Ray with
`--ray-cpus` slots. The ideal Ray time is the sequential time divided by min(slots, jobs); Ray's start-up is
reported apart from the batch's wall time.

    python -m benchmarks.batch [--jobs 8] [--latency 0.05] [--ray-cpus 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.concurrency import _loadavg

TASK = "Classify the sentiment of a movie review"
PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."


def _setup(directory: Path, n_jobs: int, latency: float) -> tuple[Path, dict[str, Any]]:
    lines = ["review,label"] + [
        f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film number {i},{'positive' if i % 2 == 0 else 'negative'}"
        for i in range(24)
    ]
    (directory / "reviews.csv").write_text("\n".join(lines) + "\n")
    jobs = directory / "jobs.yaml"
    jobs.write_text(
        f"defaults: {{data: reviews.csv, input_fields: review, output_fields: label, raw_input: {TASK}}}\n"
        f"matrix: {{seed: {list(range(n_jobs))}}}\n"
    )
    script = {
        "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"},
                 "latency": latency},
        "teacher": {"rules": [['{"prompt"', {"prompt": PROMPT}]], "default": {}},
    }  # fmt: skip
    return jobs, script


def _run(executor: Any, jobs_file: Path, store_dir: Path, script: dict[str, Any]) -> tuple[float, list[Any]]:
    from promptomatix.batch import BatchOptions, load_jobs, run_batch
    from promptomatix.sessions import SessionStore

    jobs = load_jobs(jobs_file)
    started = time.monotonic()
    report = run_batch(jobs, jobs_file, SessionStore(store_dir), executor, BatchOptions(fake_script=script))
    wall = time.monotonic() - started
    if not report.ok:
        raise SystemExit(f"a job did not complete: {[(r.name, r.status, r.error) for r in report.rows]}")
    return wall, report.rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per task-model call")
    ap.add_argument("--ray-cpus", type=int, default=2, help="slots of the local Ray (one job per slot)")
    ap.add_argument("--out", default=None, help="write the JSON result here too")
    args = ap.parse_args(argv)
    from promptomatix.batch.executors import LocalExecutor, RayExecutor

    load_before = _loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        jobs_file, script = _setup(Path(tmp), args.jobs, args.latency)
        local_wall, local_rows = _run(LocalExecutor(), jobs_file, Path(tmp) / "local", script)
        t0 = time.monotonic()
        ray_ex = RayExecutor(num_cpus=args.ray_cpus)
        ray_init = time.monotonic() - t0
        ray_wall, ray_rows = _run(ray_ex, jobs_file, Path(tmp) / "ray", script)
    slots = min(args.ray_cpus, args.jobs)
    result = {
        "jobs": args.jobs,
        "latency_s": args.latency,
        "calls_per_job": [r.calls for r in local_rows],
        "local_sequential_s": round(local_wall, 2),
        "ray_slots": slots,
        "ray_init_s": round(ray_init, 2),
        "ray_batch_s": round(ray_wall, 2),
        "ideal_ray_s": round(local_wall / slots, 2),
        "speedup": round(local_wall / ray_wall, 2),
        "efficiency": round(local_wall / slots / ray_wall, 2),
        "same_scores": [r.optimized_test for r in local_rows] == [r.optimized_test for r in ray_rows],
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "cpus": os.cpu_count(),
    }
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
