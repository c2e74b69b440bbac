"""The quality benchmark: for each task and method, the held-out test score with its 95% CI, LM calls, tokens,
wall time and prompt length. Writes `<out>/<timestamp>.json` and `.md` and prints the markdown table.

    python -m benchmarks.run --quick                          # all methods on sentiment, trec, math (quick sizes)
    python -m benchmarks.run --quick --tasks sentiment --methods initial,meta
    python -m benchmarks.run --model local/qwen2.5-coder-0.5b --max-minutes 10

Methods: initial (the initial prompt, from the meta run), meta (simple_meta_prompt, quick), dspy-miprov2,
dspy-gepa, dspy-bootstrap, dspy-labeled (Promptomatix's dspy backend, quick presets), peer-miprov2 (plain DSPy
MIPROv2 light, see benchmarks/peer.py). A method that fails is recorded with its error; the run goes on.
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
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.report import machine_info, markdown_report, prompt_words

DEFAULT_TASKS = ("sentiment", "trec", "math")
PROCESS_METHODS: dict[str, dict[str, Any]] = {
    "meta": {"backend": "simple_meta_prompt"},
    "dspy-miprov2": {"backend": "dspy", "dspy_optimizer": "miprov2"},
    "dspy-gepa": {"backend": "dspy", "dspy_optimizer": "gepa"},
    "dspy-bootstrap": {"backend": "dspy", "dspy_optimizer": "bootstrap"},
    "dspy-labeled": {"backend": "dspy", "dspy_optimizer": "labeled"},
}
METHODS = ("initial", *PROCESS_METHODS, "peer-miprov2")
DEFAULT_METHODS = ("initial", "meta", "dspy-miprov2", "dspy-gepa", "dspy-bootstrap", "peer-miprov2")
DEFAULT_OUT = Path(__file__).resolve().parent / "results"

ClientsFactory = Callable[[str, str], "dict[str, Any] | None"]  # (task name, method) -> clients
Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def _score(s: Any) -> dict[str, Any] | None:
    return s.model_dump() if s is not None else None


def _progress(tag: str, marks: dict[str, int], log: Log) -> Callable[[Any], None]:
    """Logs the run's milestones and notes the call count when held-out scoring starts (the search's calls)."""

    def progress(ev: Any) -> None:
        if ev.stage == "final":  # held-out scoring starts: every call before it was the search's
            marks.setdefault("search_calls", ev.calls)
        if ev.stage in ("baseline", "round", "confirm", "final", "done", "stopped", "model"):
            log(f"{tag} {ev.stage}: {ev.message} (calls {ev.calls})")

    return progress


def _by_role(usage_by_role: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Usage of the roles that made (or replayed) calls, without the roles that stayed idle."""
    keys = ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "seconds")
    return {r: {k: u.get(k) for k in keys} for r, u in usage_by_role.items() if u.get("calls") or u.get("cached_calls")}


def _process_row(res: Any, sessions_dir: str, marks: Mapping[str, int], t0: float) -> dict[str, Any]:
    """The result row of a process_input run: scores and usage, plus what its session recorded (rows,
    confirmations, candidates), read before a temporary sessions directory goes away."""
    m = res.metrics
    return {
        "test": _score(m.optimized_test_score),
        "initial_test": _score(m.initial_test_score),
        "calls": m.calls,
        "search_calls": marks.get("search_calls"),
        "cached_calls": m.cached_calls,
        "tokens": m.tokens,
        "time_s": round(time.perf_counter() - t0, 2),
        "verdict": res.verdict.model_dump(mode="json") if res.verdict else None,
        "test_rows": session_rows(sessions_dir, res.session_id),
        "confirmations": session_confirmations(sessions_dir, res.session_id),
        "candidates": session_candidates(sessions_dir, res.session_id),
        "instructions": res.instructions,
        "demos": res.demos,
        "best_prompt": res.best_prompt,
        "initial_prompt": res.initial_prompt,
        "initial_instructions": (res.task_spec or {}).get("initial_prompt") or "",
        "stop_reason": res.stop_reason,
        "session_id": res.session_id,
        "valid": {"initial": m.initial_prompt_score_raw, "optimized": m.optimized_prompt_score_raw},
        "by_role": _by_role(m.usage_by_role),
    }


def run_process(
    task: Mapping[str, Any],
    method: str,
    *,
    model: str,
    teacher_model: str | None,
    seed: int,
    num_threads: int,
    max_calls: int | None,
    max_minutes: float | None,
    sessions_dir: str,
    clients: dict[str, Any] | None = None,
    log: Log = _stderr,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One Promptomatix run through process_input on the task's own train/valid/test rows."""
    from promptomatix.api import process_input

    marks: dict[str, int] = {}
    progress = _progress(f"[{task['name']} {method}]", marks, log)
    t0 = time.perf_counter()
    res = process_input(
        raw_input=task["description"],
        train_data=task["train"],
        valid_data=task["valid"],
        test_data=task["test"],
        input_fields=task["input_fields"],
        output_fields=task["output_fields"],
        labels=task.get("labels"),
        task_type=task["task_type"],
        model=model,
        teacher_model=teacher_model,
        search_type="quick",
        seed=seed,
        num_threads=num_threads,
        n_parallel=max(4, num_threads),
        max_calls=max_calls,
        max_minutes=max_minutes,
        sessions_dir=sessions_dir,
        clients=clients,
        progress=progress,
        **{**PROCESS_METHODS.get(method, {}), **(extra or {})},
    )
    return _process_row(res, sessions_dir, marks, t0)


def session_rows(sessions_dir: str, session_id: str) -> list[dict[str, Any]]:
    """Per held-out row (by index into the test split): the optimized and the initial prompt's scores, from the
    session's latest version, so methods can be compared row by row."""
    doc = json.loads((Path(sessions_dir) / session_id / "session.json").read_text(encoding="utf-8"))
    versions = doc.get("versions") or []
    rows = versions[-1].get("test_examples", []) if versions else []
    return [{"index": r["index"], "score": r.get("score"), "initial_score": r.get("initial_score"),
             "error": bool(r.get("error"))} for r in rows]  # fmt: skip


def session_confirmations(sessions_dir: str, session_id: str) -> list[str]:
    """The confirmation notes of the latest version's candidates (paired rows better/worse and the sign test), so
    a part's JSON says why the initial prompt was or was not replaced."""
    doc = json.loads((Path(sessions_dir) / session_id / "session.json").read_text(encoding="utf-8"))
    versions = doc.get("versions") or []
    cands = versions[-1].get("candidates", []) if versions else []
    return [f"candidate {c['id']}: {c['note']}" for c in cands if str(c.get("note", "")).startswith("confirmation:")]


def session_candidates(sessions_dir: str, session_id: str) -> list[dict[str, Any]]:
    """What the search tried, one line each (round, origin, demos, raw score at each stage, note): a part can then
    say why nothing beat the initial prompt, after its session's temporary directory is gone."""
    doc = json.loads((Path(sessions_dir) / session_id / "session.json").read_text(encoding="utf-8"))
    versions = doc.get("versions") or []
    keys = ("id", "round", "origin", "n_demos", "length", "minibatch_raw", "valid_raw", "confirm_raw", "note")
    return [{k: c.get(k) for k in keys} for c in (versions[-1].get("candidates", []) if versions else [])]


def _finish_row(task: Mapping[str, Any], method: str, row: dict[str, Any]) -> dict[str, Any]:
    row = {"task": task["name"], "method": method, **row}
    if "instructions" in row:
        row["prompt_words"] = prompt_words(row["instructions"], row.get("demos") or [])
        row["n_demos"] = len(row.get("demos") or [])
    return row


def _initial_row(source: Mapping[str, Any], note: str) -> dict[str, Any]:
    """The initial prompt's held-out score, taken from a run that scored it (no extra calls)."""
    init = source.get("initial_test")
    return {
        "test": init,
        "initial_test": init,
        "calls": init["n"] if init else 0,
        "cached_calls": 0,
        "tokens": None,
        "time_s": None,
        "instructions": source.get("initial_instructions") or source.get("initial_prompt", ""),
        "demos": [],
        "stop_reason": "completed",
        "note": note,
    }


def _new_doc(tasks: Sequence[Mapping[str, Any]], methods: Sequence[str], **settings: Any) -> dict[str, Any]:
    """The result document before any run: the settings (in the order given), the machine and each task's shape."""
    return {
        "meta": {**settings, "methods": list(methods), "machine": machine_info()},
        "tasks": {
            t["name"]: {
                "task_type": t["task_type"],
                "description": t["description"],
                "sizes": t.get("sizes") or {s: len(t[s]) for s in ("train", "valid", "test")},
                "input_fields": t["input_fields"],
                "output_fields": t["output_fields"],
                "labels": t.get("labels"),
            }
            for t in tasks
        },
        "results": [],
    }


def _method_row(
    task: Mapping[str, Any],
    method: str,
    common: Mapping[str, Any],
    sessions_dir: str,
    clients: ClientsFactory | None,
    log: Log,
) -> dict[str, Any]:
    """One method's raw row on one task. A failing method is a result (its error), not the end of the run."""
    try:
        fake = clients(task["name"], method) if clients else None
        if method == "peer-miprov2":
            from benchmarks.peer import run_peer

            return run_peer(task, **common, clients=fake)
        if method == "initial":  # its own short run (meta with 0 rounds)
            row = run_process(
                task, "meta", **common, sessions_dir=sessions_dir, clients=fake, log=log, extra={"rounds": 0}
            )
            return {**_initial_row(row, "meta backend with 0 rounds"), "calls": row["calls"],
                    "tokens": row["tokens"], "time_s": row["time_s"]}  # fmt: skip
        return run_process(task, method, **common, sessions_dir=sessions_dir, clients=fake, log=log)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        log(f"[{task['name']} {method}] FAILED: {type(e).__name__}: {e}")
        log(traceback.format_exc(limit=6))
        return {"error": f"{type(e).__name__}: {e}".strip()}


def _initial_from_meta(meta_row: Mapping[str, Any]) -> dict[str, Any]:
    """The initial prompt's row when a meta run scored it on the test rows (no run of its own)."""
    if meta_row.get("error"):
        return {"error": "the meta run failed, so the initial prompt was not scored"}
    return _initial_row(meta_row, "scored in the meta run (test rows only)")


def _done_line(task: Mapping[str, Any], method: str, row: Mapping[str, Any]) -> str:
    score = f"{row['test']['mean']:.3f}" if row.get("test") else "-"
    return f"[{task['name']} {method}] done: test {score}, calls {row.get('calls')}, {row.get('time_s')} s"


def run_benchmark(
    tasks: Sequence[Mapping[str, Any]],
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    model: str = "local/smollm2-135m",
    teacher_model: str | None = None,
    seed: int = 0,
    num_threads: int = 4,
    max_calls: int | None = None,
    max_minutes: float | None = None,
    sessions_dir: str | None = None,
    clients: ClientsFactory | None = None,
    command: str = "",
    out_dir: str | os.PathLike[str] | None = None,
    log: Log = _stderr,
) -> dict[str, Any]:
    """Run every task × method; return the result document (and write it to `out_dir` after each method)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    common = {"model": model, "teacher_model": teacher_model, "seed": seed, "num_threads": num_threads,
              "max_calls": max_calls, "max_minutes": max_minutes}  # fmt: skip
    doc = _new_doc(tasks, methods, command=command, **common)
    out = Path(out_dir) if out_dir else None
    started = time.perf_counter()
    tmp = None if sessions_dir else tempfile.TemporaryDirectory(prefix="pmx-bench-")
    sdir = sessions_dir or tmp.name  # type: ignore[union-attr]

    def save() -> None:
        doc["meta"]["total_time_s"] = round(time.perf_counter() - started, 1)
        if out is not None:
            write_outputs(doc, out, stamp)

    order = [m for m in methods if m != "initial"]
    if "initial" in methods and "meta" not in methods:
        order.insert(0, "initial")  # its own short run (meta with 0 rounds)
    try:
        for task in tasks:
            rows: dict[str, dict[str, Any]] = {}
            for method in order:
                log(f"[{task['name']} {method}] starting")
                rows[method] = _finish_row(task, method, _method_row(task, method, common, sdir, clients, log))
                doc["results"].append(rows[method])
                if method == "meta" and "initial" in methods:
                    rows["initial"] = _finish_row(task, "initial", _initial_from_meta(rows["meta"]))
                    doc["results"].insert(len(doc["results"]) - 1, rows["initial"])
                log(_done_line(task, method, rows[method]))
                save()
    finally:
        save()
        if tmp is not None:
            tmp.cleanup()
    return doc


def write_outputs(doc: Mapping[str, Any], out: Path, stamp: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{stamp}.json", out / f"{stamp}.md"
    for path, text in ((js, json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n"),
                       (md, markdown_report(doc))):  # fmt: skip
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return js, md


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="quick split sizes (see benchmarks/README.md)")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS), help="comma-separated (default: sentiment,trec,math)")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated: {', '.join(METHODS)}")
    p.add_argument("--model", default="local/smollm2-135m")
    p.add_argument("--teacher-model", default=None, help="default: the task model")
    p.add_argument("--seed", type=int, default=0, help="the runs' seed (process_input seed=, MIPROv2 seed=)")
    p.add_argument("--data-seed", type=int, default=0, help="benchmarks.data split seed")
    p.add_argument(
        "--data-seeds", default=None, help="several split seeds, e.g. 0,1,2: every task runs on each split (task@sN)"
    )
    p.add_argument("--num-threads", type=int, default=4)
    p.add_argument("--max-calls", type=int, default=None, help="LM call budget per method")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget per method")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="where <timestamp>.json/.md go")
    p.add_argument("--sessions-dir", default=None, help="keep the runs' sessions here (default: a temp dir)")
    p.add_argument("-v", "--verbose", action="store_true", help="keep DSPy's INFO logs and progress bars")
    args = p.parse_args(argv)

    from benchmarks.data import TASKS, load_task

    names, methods = _split(args.tasks), _split(args.methods)
    bad = [n for n in names if n not in TASKS] + [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown task/method {bad}; tasks: {', '.join(TASKS)}; methods: {', '.join(METHODS)}")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    if not args.verbose:
        from benchmarks.engine import quiet_dspy

        quiet_dspy()
    seeds = [int(v) for v in _split(args.data_seeds)] if args.data_seeds else [args.data_seed]
    tasks = []
    for data_seed in seeds:
        for n in names:
            task = load_task(n, seed=data_seed, quick=args.quick)
            tasks.append({**task, "name": f"{n}@s{data_seed}"} if len(seeds) > 1 else task)
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    doc = run_benchmark(
        tasks,
        methods,
        model=args.model,
        teacher_model=args.teacher_model,
        seed=args.seed,
        num_threads=args.num_threads,
        max_calls=args.max_calls,
        max_minutes=args.max_minutes,
        sessions_dir=args.sessions_dir,
        command=command.strip(),
        out_dir=args.out,
    )
    print(markdown_report(doc))
    failed = [r for r in doc["results"] if r.get("error")]
    _stderr(f"wrote {args.out}/ ({len(doc['results'])} rows, {len(failed)} failed) in {doc['meta']['total_time_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
