"""Confirmation on fresh rows (issue 14, RESULTS.md §7): each seed's meta prompt against the initial prompt, on rows
that no seed of the suite ever used (train, valid or test), with the same model, metric and paired test.

Why: on sentiment, spam and squad the suite's own test (100 rows per seed) said "no detectable difference". More
seeds, run until p crosses 0.05, would make that test meaningless; a second test on rows never seen, decided on
before it is run and reported whatever it shows, does not. The prompts are the ones the suite's meta parts
chose (read from their JSON): nothing is optimized again, so the search cannot have seen these rows.

    PROMPTOMATIX_THREADS=1 python -m benchmarks.suite_confirm run sentiment --rows 300
    python -m benchmarks.suite_confirm report
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.suite import SUITE_DIR, load_suite_task, part_path

CONFIRM_DIR = SUITE_DIR.parent / "suite-confirm"
SEEDS = (0, 1, 2)
SALT = 7919  # the fresh rows' own draw, unlike every suite seed


def _key(task: dict[str, Any], row: dict[str, Any]) -> str:
    """Rows are the same when their inputs are; squad rows also when they share a passage."""
    if "context" in row:
        return row["context"]
    return json.dumps([row[f] for f in task["input_fields"]], ensure_ascii=False)


def fresh_rows(name: str, per_seed: int) -> dict[int, list[dict[str, Any]]]:
    """`per_seed` rows for each seed, none of them (nor their passage) in any split of any suite seed, labels
    balanced as the suite's test splits are."""
    from benchmarks.data import ARCHIVES, _spec, ensure_archive, read_archive_members

    used_tasks = [load_suite_task(name, s) for s in SEEDS]
    used = {_key(t, r) for t in used_tasks for split in ("train", "valid", "test") for r in t[split]}
    spec = _spec(name)
    members = read_archive_members(ensure_archive(ARCHIVES[spec.archive], None), spec.files)
    want = len(SEEDS) * per_seed
    pool = spec.builder(members, {"train": 0, "valid": 0, "test": want + len(used)}, random.Random(SALT))["test"]
    pool = [r for r in pool if _key(used_tasks[0], r) not in used]
    label = (spec.output_fields or [None])[0] if spec.labels else None
    by: dict[Any, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in pool:
        by[r[label] if label else None].append(r)
    dealt = [r for group in zip(*by.values(), strict=False) for r in group]  # round-robin over labels
    if len(dealt) < want:
        raise SystemExit(f"only {len(dealt)} fresh balanced rows for {name}; ask for fewer with --rows")
    return {s: dealt[i * per_seed : (i + 1) * per_seed] for i, s in enumerate(SEEDS)}


def format_line(part: dict[str, Any]) -> str | None:
    """The chosen prompt's output-format line (the part keeps it only inside `best_prompt`): what its system
    message says after the instructions."""
    system = part["best_prompt"].split("[user]", 1)[0].removeprefix("[system]").strip()
    rest = system.removeprefix(part["instructions"].strip()).strip()
    return rest or None if system.startswith(part["instructions"].strip()) else None


def score(task: dict[str, Any], instructions: str, demos: list[dict[str, Any]], rows: list[dict[str, Any]],
          lm: Any, fmt: str | None = None) -> list[float]:  # fmt: skip
    """Each row's raw score (the suite's final metric, no length penalty) for one prompt."""
    from promptomatix.backends.prompt import PromptCandidate, PromptProgram
    from promptomatix.metrics import Evaluator, MetricsManager

    spec = _spec_of(task)
    mm = MetricsManager(output_fields=spec.output_names, lambda_penalty=0.0, label_set=spec.labels,
                        input_fields=spec.input_names)  # fmt: skip
    program = PromptProgram(PromptCandidate(instructions=instructions, demos=demos, format_line=fmt), spec, lm)
    rep = Evaluator(num_threads=4, n_bootstrap=0).run(
        program, rows, mm.scorer(spec.task_type, final=True), spec.input_names, spec.output_names,
        label_field=spec.label_field,
    )  # fmt: skip
    if rep.n != len(rows):
        raise RuntimeError(f"{len(rows) - rep.n} rows were not scored")
    return [r.raw_score for r in sorted(rep.records, key=lambda r: r.index)]


def _spec_of(task: dict[str, Any]) -> Any:
    from promptomatix.task.infer import infer_task_spec
    from promptomatix.task.overrides import SpecOverrides

    given = SpecOverrides(task_type=task["task_type"], input_fields=task["input_fields"],
                          output_fields=task["output_fields"], labels=task.get("labels"))  # fmt: skip
    return infer_task_spec(task["description"], teacher=None, given=given)


def run(name: str, per_seed: int, model: str) -> Path:
    from promptomatix.metrics.verdict import paired_verdict

    lm = _task_lm(model)
    rows = fresh_rows(name, per_seed)
    out: dict[str, Any] = {"task": name, "model": model, "rows_per_seed": per_seed, "salt": SALT, "seeds": {}}
    for seed in SEEDS:
        part = json.loads(part_path(SUITE_DIR, name, seed, "meta").read_text(encoding="utf-8"))["result"]
        task, t0 = load_suite_task(name, seed), time.time()
        initial = score(task, part["initial_instructions"], [], rows[seed], lm)
        fmt = format_line(part)
        same = part["instructions"] == part["initial_instructions"] and not part.get("demos") and not fmt
        best = initial if same else score(task, part["instructions"], part.get("demos") or [], rows[seed], lm, fmt)
        v = paired_verdict(initial, best, errors=0, split="test", seed=seed)
        out["seeds"][str(seed)] = {"same_prompt": same, "initial": initial, "optimized": best,
                                   "verdict": v.model_dump(), "time_s": round(time.time() - t0, 1)}  # fmt: skip
        print(f"{name} s{seed}: {v.outcome} {v.initial_mean:.3f} -> {v.optimized_mean:.3f} p={v.p_value}", flush=True)
    a = [x for s in out["seeds"].values() for x in s["initial"]]
    b = [x for s in out["seeds"].values() for x in s["optimized"]]
    out["pooled"] = paired_verdict(a, b, errors=0, split="test").model_dump()
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    CONFIRM_DIR.mkdir(parents=True, exist_ok=True)
    path = CONFIRM_DIR / f"{name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return path


def replay_rule(name: str, seed: int, model: str) -> dict[str, Any]:
    """The paired-evidence rule (backends/selection.py) replayed on a suite part's chosen prompt: it and the initial
    prompt scored again on the rows the confirmation compares them on (valid + train rows that are not its demos),
    to say whether the rule would have let the part's prompt replace the initial one."""
    from promptomatix.backends.selection import evidence

    lm = _task_lm(model)
    part = json.loads(part_path(SUITE_DIR, name, seed, "meta").read_text(encoding="utf-8"))["result"]
    task = load_suite_task(name, seed)
    demos = part.get("demos") or []
    rows = task["valid"] + [r for r in task["train"] if r not in demos]
    initial = score(task, part["initial_instructions"], [], rows, lm)
    chosen = score(task, part["instructions"], demos, rows, lm, format_line(part))
    ev = evidence(list(zip(chosen, initial, strict=True)))
    return {"task": name, "seed": seed, "rows": len(rows), "initial_mean": sum(initial) / len(rows),
            "chosen_mean": sum(chosen) / len(rows), "evidence": str(ev), "kept": ev.enough and sum(chosen) > sum(initial)}  # fmt: skip


def _task_lm(model: str) -> Any:
    from promptomatix.lm.boundary import LMBoundary
    from promptomatix.lm.catalog import resolve_local_model
    from promptomatix.lm.local import LocalClient

    return LMBoundary({"task": LocalClient(resolve_local_model(model, auto_pull=True), model=model)}).role("task")


def report() -> str:
    """The §7 table: per task, each seed's verdict on its fresh rows and the pooled one."""
    lines = ["| task | rows per seed | s0 | s1 | s2 | pooled: wins / losses, diff, p | verdict |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for path in sorted(CONFIRM_DIR.glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        cells = []
        for s in map(str, SEEDS):
            v = d["seeds"][s]["verdict"]
            same = " (same prompt)" if d["seeds"][s]["same_prompt"] else ""
            cells.append(f"{v['initial_mean']:.3f} → {v['optimized_mean']:.3f}, p = {v['p_value']:.2g}{same}")
        p = d["pooled"]
        pooled = f"{p['wins']} / {p['losses']}, {p['diff']:+.3f}, p = {p['p_value']:.2g}"
        lines.append(f"| {d['task']} | {d['rows_per_seed']} | " + " | ".join(cells) + f" | {pooled} | {p['outcome']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.suite_confirm", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("task")
    r.add_argument("--rows", type=int, default=300, help="fresh rows per seed")
    r.add_argument("--model", default="local/smollm2-135m")
    sub.add_parser("report")
    rr = sub.add_parser("rule", help="replay the paired-evidence rule on a part's chosen prompt")
    rr.add_argument("task")
    rr.add_argument("--seed", type=int, required=True)
    rr.add_argument("--model", default="local/smollm2-135m")
    args = ap.parse_args(argv)
    if args.cmd == "run":
        print(run(args.task, args.rows, args.model))
    elif args.cmd == "rule":
        print(json.dumps(replay_rule(args.task, args.seed, args.model)))
    else:
        print(report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
