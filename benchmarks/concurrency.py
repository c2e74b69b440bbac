"""Is concurrency real? N concurrent short calls to the embedded model against the same N calls made one by one.

Both go through a run's LM boundary (the path every optimization takes) with the response cache off. The model is
loaded and warmed up before timing; each mode is timed `repeats` times and the median is reported, alternating
sequential and concurrent so background load on the machine hits both alike.

    python -m benchmarks.concurrency [--model local/smollm2-135m] [--calls 8] [--n-parallel 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

TOPICS = ("rain", "cats", "bread", "music", "trains", "snow", "coffee", "books", "rivers", "clocks", "salt", "owls")


def _prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Write one short sentence about {TOPICS[i % len(TOPICS)]}."}] for i in range(n)
    ]


def _loadavg() -> list[float] | None:
    try:
        with open("/proc/loadavg") as fh:
            return [float(x) for x in fh.read().split()[:3]]
    except OSError:
        return None


def measure(
    model: str = "local/smollm2-135m",
    *,
    calls: int = 8,
    n_parallel: int = 4,
    repeats: int = 3,
    max_tokens: int = 24,
    clients: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Median wall time of `calls` sequential vs `calls` concurrent calls (threads = calls); ratio = seq / conc."""
    from promptomatix.lm.factory import ModelSettings, build_boundary

    boundary = build_boundary(ModelSettings(model=model, n_parallel=n_parallel), clients=clients)
    role = boundary.role("task")
    prompts = _prompts(calls)

    def one(messages: list[dict[str, str]]) -> int:
        out = role.complete(messages, max_tokens=max_tokens, temperature=0.0, cache=False)
        return out.completion_tokens

    t0 = time.perf_counter()
    one(prompts[0])  # load + warm up
    load_s = time.perf_counter() - t0
    seq_times, conc_times, seq_tokens, conc_tokens = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        seq_tokens.append(sum(one(p) for p in prompts))
        seq_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=calls) as pool:
            conc_tokens.append(sum(pool.map(one, prompts)))
        conc_times.append(time.perf_counter() - t0)
    seq, conc = statistics.median(seq_times), statistics.median(conc_times)
    return {
        "load_average": _loadavg(),
        "model": model,
        "calls": calls,
        "n_parallel": n_parallel,
        "max_tokens": max_tokens,
        "repeats": repeats,
        "load_and_first_call_s": round(load_s, 3),
        "sequential_s": round(seq, 3),
        "concurrent_s": round(conc, 3),
        "sequential_runs_s": [round(x, 3) for x in seq_times],
        "concurrent_runs_s": [round(x, 3) for x in conc_times],
        "completion_tokens_sequential": seq_tokens,
        "completion_tokens_concurrent": conc_tokens,
        "ratio": round(seq / conc, 2) if conc > 0 else None,
        "ratio_best": round(min(seq_times) / min(conc_times), 2) if min(conc_times) > 0 else None,
        "boundary_calls": boundary.usage().total.calls,
    }


def markdown(res: dict[str, Any]) -> str:
    return "\n".join(
        [
            "| model | calls | slots (n_parallel) | max_tokens | repeats | sequential (median) | concurrent (median) "
            "| speed-up (medians) | speed-up (best runs) |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| `{res['model']}` | {res['calls']} | {res['n_parallel']} | {res['max_tokens']} | {res['repeats']} | "
            f"{res['sequential_s']:.2f} s | {res['concurrent_s']:.2f} s | **{res['ratio']}×** | {res['ratio_best']}× |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.concurrency", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="local/smollm2-135m")
    p.add_argument("--calls", type=int, default=8)
    p.add_argument("--n-parallel", type=int, default=4, help="llama.cpp slots (the run default is 4)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=24)
    p.add_argument("--json", action="store_true", help="print the raw JSON too")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    args = p.parse_args(argv)
    res = measure(
        args.model, calls=args.calls, n_parallel=args.n_parallel, repeats=args.repeats, max_tokens=args.max_tokens
    )
    if args.json:
        print(json.dumps(res, indent=1))
    if args.out:
        from pathlib import Path

        from benchmarks.report import machine_info

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"machine": machine_info(), **res}, indent=1) + "\n", encoding="utf-8")
    print(markdown(res))
    print(
        f"sequential runs {res['sequential_runs_s']} s, concurrent runs {res['concurrent_runs_s']} s; "
        f"completion tokens {res['completion_tokens_sequential']} / {res['completion_tokens_concurrent']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
