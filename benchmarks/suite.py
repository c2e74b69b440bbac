"""The comparison suite (issue 14): five tasks from PyPI-shipped data, held-out tests of 100+ rows, three data
seeds; the initial prompt vs meta vs our dspy MIPROv2 vs plain DSPy MIPROv2-light, with paired verdicts.

It runs in parts. Each (task, seed, method) is one JSON file in `benchmarks/results/suite/`, written when that
run ends, and a part that exists is skipped, so a stopped run resumes. `report` builds the tables from whatever
parts exist and can write them into RESULTS.md between the suite markers.

    python -m benchmarks.suite run --tasks trec,spam --seeds 0 --methods meta
    python -m benchmarks.suite run                      # everything not yet run
    python -m benchmarks.suite report --write           # RESULTS.md section from the parts
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.carry import forget
from benchmarks.common import DEFAULT_CACHE_DIR
from benchmarks.report import machine_info

# test >= 100 rows everywhere; train/valid as small as a user would label by hand
SUITE_SIZES: dict[str, tuple[int, int, int]] = {
    "sentiment": (24, 24, 100),
    "trec": (24, 24, 100),
    "spam": (24, 24, 100),
    "intent": (28, 28, 105),
    "squad": (12, 12, 100),
    "math": (16, 16, 100),
}
SUITE_TASKS = ("trec", "intent", "spam", "sentiment", "squad")
SUITE_METHODS = ("meta", "peer-miprov2", "meta-third", "dspy-miprov2")
SUITE_DIR = Path(__file__).resolve().parent / "results" / "suite"
RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
PARTS_CACHE = DEFAULT_CACHE_DIR / "parts"  # a part's carried-over calls, until its JSON is written


def _log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def part_path(out: Path, task: str, seed: int, method: str) -> Path:
    return out / f"{task}-s{seed}-{method}.json"


def load_suite_task(name: str, seed: int) -> dict[str, Any]:
    from benchmarks.data import load_task

    return load_task(name, sizes=SUITE_SIZES[name], seed=seed)


def third_of_peer(out: Path, task: dict[str, Any], seed: int) -> int | None:
    """`meta-third`'s budget: a third of the search calls the DSPy peer spent on the same split, plus the calls
    held back for scoring both prompts on the test rows (None while the peer's part is missing or failed)."""
    path = part_path(out, task["name"], seed, "peer-miprov2")
    if not path.exists():
        return None
    peer = json.loads(path.read_text(encoding="utf-8"))["result"]
    if peer.get("error") or not peer.get("search_calls"):
        return None
    return peer["search_calls"] // 3 + 2 * len(task["test"])


def run_part(task: dict[str, Any], seed: int, method: str, *, model: str, teacher_model: str | None,
             num_threads: int, max_calls: int | None, part_dir: Path) -> dict[str, Any]:  # fmt: skip
    """One method on one task split; a failure is a result (with its error), not the end of the suite.
    `meta-third` is meta under a budget of a third of the peer's search calls (see `third_of_peer`). Every
    method's answers are kept in `part_dir` until the part is written, for an attempt after this one is cut off
    (benchmarks/carry.py)."""
    from benchmarks.run import _finish_row, run_process

    common = {"model": model, "teacher_model": teacher_model, "seed": seed, "num_threads": num_threads}
    load = os.getloadavg()[0]
    try:
        if method == "peer-miprov2":  # hours a part on squad: an attempt a session end cuts off carries over
            from benchmarks.carry import Attempts, with_attempts
            from benchmarks.peer import run_peer

            with Attempts(part_dir) as attempts:
                row = run_peer(task, **common, max_calls=max_calls, part_dir=part_dir)
            row = with_attempts(row, attempts, row.get("replayed_calls", 0))
        else:  # the same carry-over, through the model clients the run is given
            from benchmarks.carry import Attempts, replay_clients, with_attempts

            backend = "meta" if method == "meta-third" else method
            clients, cache = replay_clients(model, teacher_model, max(4, num_threads), part_dir)
            with Attempts(part_dir) as attempts, tempfile.TemporaryDirectory(prefix="pmx-suite-") as sdir:
                row = run_process(task, backend, **common, max_calls=max_calls, max_minutes=None, sessions_dir=sdir,
                                  clients=clients, log=_log)  # fmt: skip
            row = with_attempts(row, attempts, cache.replayed)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a failing method is recorded in its part
        _log(traceback.format_exc(limit=6))
        row = {"error": f"{type(e).__name__}: {e}".strip()}
    row = _finish_row(task, method, row)
    row.update(seed=seed, load_start=round(load, 2), load_end=round(os.getloadavg()[0], 2))
    return row


def run_suite(tasks: Sequence[str], seeds: Sequence[int], methods: Sequence[str], *, out: Path, model: str,
              teacher_model: str | None, num_threads: int, max_calls: int | None, command: str,
              parts_cache: Path = PARTS_CACHE) -> int:  # fmt: skip
    """Run every missing part, seed-major so that each seed's five tasks finish before the next seed starts."""
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    code = machine_info()["git_commit"]  # the code this process loaded, not what HEAD is when a part ends
    for seed in seeds:
        for name in tasks:
            task = load_suite_task(name, seed)
            for method in methods:
                path = part_path(out, name, seed, method)
                if path.exists():
                    continue
                budget = max_calls
                if method == "meta-third":
                    budget = third_of_peer(out, task, seed)
                    if budget is None:
                        _log(f"[{name}@s{seed} meta-third] skipped: run peer-miprov2 on this split first")
                        continue
                _log(f"[{name}@s{seed} {method}] starting")
                part_dir = parts_cache / out.name / path.stem
                row = run_part(task, seed, method, model=model, teacher_model=teacher_model,
                               num_threads=num_threads, max_calls=budget, part_dir=part_dir)  # fmt: skip
                doc = {"meta": {"command": command, "model": model, "teacher_model": teacher_model,
                                "num_threads": num_threads, "max_calls": budget, "sizes": SUITE_SIZES[name],
                                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "machine": {**machine_info(), "git_commit": code}},
                       "result": row}  # fmt: skip
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
                os.replace(tmp, path)
                forget(part_dir)
                test = (row.get("test") or {}).get("mean")
                _log(f"[{name}@s{seed} {method}] done: test {test}, calls {row.get('calls')}, {row.get('time_s')} s"
                     + (f", ERROR {row['error']}" if row.get("error") else ""))  # fmt: skip
                done += 1
    return done


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the parts that do not exist yet")
    r.add_argument("--tasks", default=",".join(SUITE_TASKS))
    r.add_argument("--seeds", default="0,1,2", help="data seeds (also the runs' seed)")
    r.add_argument("--methods", default=",".join(SUITE_METHODS), help="meta, meta-third, dspy-miprov2, peer-miprov2 "
                   "(initial comes with meta: the same run scores both prompts on the same rows)")  # fmt: skip
    r.add_argument("--model", default="local/smollm2-135m")
    r.add_argument("--teacher-model", default=None)
    r.add_argument("--num-threads", type=int, default=4)
    r.add_argument("--max-calls", type=int, default=None)
    r.add_argument("--out", default=str(SUITE_DIR))
    rep = sub.add_parser("report", help="tables from the parts that exist")
    rep.add_argument("--out", default=str(SUITE_DIR))
    rep.add_argument("--write", action="store_true", help="replace the suite section of benchmarks/RESULTS.md")
    carry = sub.add_parser("carry", help="save unfinished parts' caches into the repository, or restore them")
    carry.add_argument("action", choices=("save", "restore"))
    carry.add_argument("--out", default=str(SUITE_DIR))
    args = p.parse_args(argv)
    if args.cmd == "carry":
        from benchmarks.carry import restore_parts, save_parts

        out = Path(args.out)
        if args.action == "save":
            done = save_parts(PARTS_CACHE / out.name, out / "carry", {j.stem for j in out.glob("*.json")})
        else:
            done = restore_parts(out / "carry", PARTS_CACHE / out.name)
        print(f"{args.action}d: {', '.join(done) or 'nothing'}")
        return 0
    if args.cmd == "report":
        from benchmarks.suite_report import suite_markdown, write_results_section

        md = suite_markdown(Path(args.out))
        if args.write:
            write_results_section(RESULTS_MD, md, Path(args.out))
        print(md)
        return 0
    split = [v.strip() for v in args.tasks.split(",") if v.strip()]
    bad = [t for t in split if t not in SUITE_SIZES]
    if bad:
        p.error(f"unknown task(s) {bad}; suite tasks: {', '.join(SUITE_SIZES)}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if wrong := [m for m in methods if m not in SUITE_METHODS]:  # `peer` ran Promptomatix's default backend as a part
        p.error(f"unknown method(s) {wrong}; suite methods: {', '.join(SUITE_METHODS)}")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from benchmarks.engine import quiet_dspy

    quiet_dspy()
    command = "python -m benchmarks.suite " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    n = run_suite(split, [int(s) for s in args.seeds.split(",")], methods,
                  out=Path(args.out), model=args.model, teacher_model=args.teacher_model,
                  num_threads=args.num_threads, max_calls=args.max_calls, command=command)  # fmt: skip
    _log(f"{n} part(s) run; report: python -m benchmarks.suite report")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
