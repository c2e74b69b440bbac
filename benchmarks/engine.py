"""Engine benchmark: how close an optimization's wall time gets to the ideal, and the CLI's start-up time.

A fake LM (promptomatix.lm.fake.FakeLM) sleeps a fixed latency per call, so the model costs exactly
`calls x latency` seconds of waiting. With `num_threads` workers the ideal wall time is
`calls x latency / num_threads`; ratio = measured / ideal (1.0 = perfect overlap, no engine overhead; serial
stages such as teacher rewrites push it above 1). The same run at latency 0 measures the engine's own overhead.

    python -m benchmarks.engine [--latency 0.05] [--num-threads 4] [--backends meta,dspy-bootstrap] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.report import machine_info
from promptomatix.lm.fake import FakeLM

GOOD = "Say negative if the review complains, otherwise positive."
_FIELDS_RE = re.compile(r"Respond with a JSON object in the following order of fields: (.+)", re.S)
ENGINE_BACKENDS = {
    "meta": {"backend": "simple_meta_prompt"},
    "dspy-bootstrap": {"backend": "dspy", "dspy_optimizer": "bootstrap"},
    "dspy-labeled": {"backend": "dspy", "dspy_optimizer": "labeled"},
    "dspy-miprov2": {"backend": "dspy", "dspy_optimizer": "miprov2"},
}


def synthetic_rows(n: int, offset: int = 0) -> list[dict[str, str]]:
    """Balanced two-label rows: 'great ...' reviews are positive, 'awful ...' negative."""
    out = []
    for i in range(n):
        good = (i + offset) % 2 == 0
        words = "great wonderful" if good else "awful boring"
        out.append({"review": f"{words} film number {i + offset}", "label": "positive" if good else "negative"})
    return out


def _requested(messages: list[dict[str, str]]) -> list[str]:
    m = _FIELDS_RE.search(messages[-1]["content"])
    return re.findall(r"`([^`]+)`", m.group(1)) if m else []


def task_responder(messages: list[dict[str, str]]) -> str:
    """Right when the instructions say 'complains' (or demos are shown); otherwise always 'positive'."""
    system, user = messages[0]["content"], messages[-1]["content"]
    right = "complains" in system or len(messages) > 2
    label = ("negative" if "awful" in user else "positive") if right else "positive"
    fields = _requested(messages)
    if not fields:  # the meta backend's own JSON prompt
        return json.dumps({"label": label})
    return json.dumps({f: (label if f == "label" else "The wording decides.") for f in fields})


def teacher_responder(messages: list[dict[str, str]]) -> str:
    """The meta backend's rewrite ({"prompt": ...}), DSPy's proposer fields, or the spec's fill-in keys."""
    fields = _requested(messages)
    if fields:
        return json.dumps({f: GOOD for f in fields})
    return json.dumps({"prompt": GOOD})


def fake_clients(latency: float) -> dict[str, FakeLM]:
    return {
        "task": FakeLM(default=task_responder, latency=latency, model="fake/task"),
        "teacher": FakeLM(default=teacher_responder, latency=latency, model="fake/teacher"),
    }


def run_optimization(
    backend: str = "meta",
    *,
    latency: float = 0.05,
    num_threads: int = 4,
    sizes: tuple[int, int, int] = (12, 12, 20),
    seed: int = 0,
    sessions_dir: str | None = None,
) -> dict[str, Any]:
    """One quick optimization through process_input with fake LMs; wall time against the ideal."""
    from promptomatix.api import process_input

    n_train, n_valid, n_test = sizes
    with tempfile.TemporaryDirectory(prefix="pmx-engine-") as tmp:
        t0 = time.perf_counter()
        res = process_input(
            raw_input="Classify the sentiment of a movie review as positive or negative",
            train_data=synthetic_rows(n_train),
            valid_data=synthetic_rows(n_valid, 1000),
            test_data=synthetic_rows(n_test, 2000),
            input_fields=["review"],
            output_fields=["label"],
            labels=["positive", "negative"],
            task_type="classification",
            search_type="quick",
            num_threads=num_threads,
            seed=seed,
            sessions_dir=sessions_dir or tmp,
            clients=fake_clients(latency),
            **ENGINE_BACKENDS[backend],
        )
        wall = time.perf_counter() - t0
    m = res.metrics
    ideal = m.calls * latency / num_threads
    return {
        "backend": backend,
        "latency_s": latency,
        "num_threads": num_threads,
        "sizes": list(sizes),
        "calls": m.calls,
        "cached_calls": m.cached_calls,
        "calls_by_role": {r: u["calls"] for r, u in m.usage_by_role.items()},
        "wall_s": round(wall, 3),
        "sequential_model_time_s": round(m.calls * latency, 3),
        "ideal_s": round(ideal, 3),
        "ratio": round(wall / ideal, 2) if ideal > 0 else None,
        "initial_test": m.initial_test_score.mean if m.initial_test_score else None,
        "optimized_test": m.optimized_test_score.mean if m.optimized_test_score else None,
    }


def engine_benchmark(
    backends: list[str] | tuple[str, ...] = ("meta",),
    *,
    latency: float = 0.05,
    num_threads: int = 4,
    repeats: int = 1,
    **kw: Any,
) -> list[dict[str, Any]]:
    """Each backend at `latency` (the median of `repeats` runs gives the ratio) and at latency 0 (the median
    wall time there is the engine's own overhead, in seconds)."""
    rows = []
    for b in backends:
        runs = [run_optimization(b, latency=latency, num_threads=num_threads, **kw) for _ in range(repeats)]
        zero = [run_optimization(b, latency=0.0, num_threads=num_threads, **kw)["wall_s"] for _ in range(repeats)]
        row = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]  # the median run
        row["repeats"] = repeats
        row["wall_runs_s"] = [r["wall_s"] for r in runs]
        row["overhead_s_at_zero_latency"] = round(statistics.median(zero), 3)
        rows.append(row)
    return rows


def machine_load() -> dict[str, Any]:
    """Load average and CPU pressure (Linux PSI: % of time some task waited for a CPU), to judge a timing by."""
    import os

    out: dict[str, Any] = {"time": time.strftime("%H:%M:%S", time.gmtime()), "load_average": os.getloadavg()}
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        out["cpu_pressure_some_avg60"] = float(re.search(r"avg60=([\d.]+)", some).group(1))  # type: ignore[union-attr]
    except (OSError, AttributeError, IndexError):
        pass
    return out


def quiet_dspy() -> None:
    """DSPy logs every MIPROv2 trial at INFO and draws progress bars; benchmarks print tables instead."""
    import logging
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")
    import dspy  # its import configures the "dspy" logger at INFO, so quiet it afterwards

    dspy.disable_logging()
    logging.getLogger("dspy").setLevel(logging.ERROR)


def _help_probe() -> str:
    return (
        "import sys, time, io, contextlib; t=time.perf_counter()\n"
        "from promptomatix.cli.app import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print({'dspy': 'dspy' in sys.modules, 'litellm': 'litellm' in sys.modules, "
        "'xllamacpp': 'xllamacpp' in sys.modules, 'in_process_s': round(time.perf_counter()-t, 3)})"
    )


def cli_startup(repeats: int = 5) -> dict[str, Any]:
    """Median wall time of `promptomatix --help` as a subprocess, and which heavy modules it imported."""
    exe = Path(sys.executable).with_name("promptomatix")
    cmd = [str(exe), "--help"] if exe.exists() else [sys.executable, "-m", "promptomatix", "--help"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"command": " ".join(cmd), "error": (proc.stderr or proc.stdout).strip()[-300:]}
    probe = subprocess.run([sys.executable, "-c", _help_probe()], capture_output=True, text=True, check=False)
    imported: dict[str, Any] = {}
    if probe.returncode == 0 and probe.stdout.strip():
        import ast

        imported = ast.literal_eval(probe.stdout.strip().splitlines()[-1])
    return {
        "command": "promptomatix --help" if exe.exists() else "python -m promptomatix --help",
        "repeats": repeats,
        "median_s": round(statistics.median(times), 3),
        "runs_s": [round(t, 3) for t in times],
        "imports_dspy": imported.get("dspy"),
        "imports_litellm": imported.get("litellm"),
        "imports_xllamacpp": imported.get("xllamacpp"),
    }


def markdown(rows: list[dict[str, Any]], startup: dict[str, Any] | None = None) -> str:
    out = [
        "| backend | latency | threads | calls (task/teacher) | wall (median) | ideal = calls×latency/threads | ratio "
        "| sequential model time | wall at latency 0 (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        roles = r["calls_by_role"]
        out.append(
            f"| {r['backend']} | {r['latency_s'] * 1000:.0f} ms | {r['num_threads']} | {r['calls']} "
            f"({roles.get('task', 0)}/{roles.get('teacher', 0)}) | {r['wall_s']:.2f} s | {r['ideal_s']:.2f} s "
            f"| **{r['ratio']}** | {r['sequential_model_time_s']:.2f} s | {r.get('overhead_s_at_zero_latency', 0):.2f} s |"
        )
    if startup:
        out += [
            "",
            "| command | median of | wall (median) | runs | imports dspy | imports litellm |",
            "|---|---|---|---|---|---|",
        ]
        if "error" in startup:
            out.append(f"| `{startup['command']}` | - | error: {startup['error']} | | | |")
        else:
            out.append(
                f"| `{startup['command']}` | {startup['repeats']} | **{startup['median_s']:.2f} s** | "
                f"{', '.join(f'{t:.2f}' for t in startup['runs_s'])} | {startup['imports_dspy']} "
                f"| {startup['imports_litellm']} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine", description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.05, help="seconds per fake LM call (default 0.05)")
    p.add_argument("--num-threads", type=int, default=4)
    p.add_argument("--backends", default="meta", help=f"comma-separated: {', '.join(ENGINE_BACKENDS)}")
    p.add_argument("--sizes", default="12,12,20", help="train,valid,test rows of the synthetic task")
    p.add_argument("--repeats", type=int, default=3, help="runs per backend (the median is reported)")
    p.add_argument("--startup-repeats", type=int, default=5)
    p.add_argument("--no-startup", action="store_true", help="skip the `promptomatix --help` timing")
    p.add_argument("--json", action="store_true", help="print the raw JSON too")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    args = p.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ENGINE_BACKENDS]
    if unknown:
        p.error(f"unknown backend(s) {unknown}; known: {', '.join(ENGINE_BACKENDS)}")
    sizes = tuple(int(x) for x in args.sizes.split(","))
    quiet_dspy()
    before = machine_load()
    rows = engine_benchmark(
        backends, latency=args.latency, num_threads=args.num_threads, sizes=sizes, repeats=args.repeats
    )
    startup = None if args.no_startup else cli_startup(args.startup_repeats)
    doc = {"machine": machine_info(), "load": {"start": before, "end": machine_load()}, "engine": rows,
           "cli_startup": startup}  # fmt: skip
    if args.json:
        print(json.dumps(doc, indent=1))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(markdown(rows, startup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
