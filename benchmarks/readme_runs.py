"""The README's first three commands and examples/quickstart.py, as a new user runs them, on the embedded model.

Records for each: wall time, rows generated/kept (and why dropped), the verdict, the exported text; checks that
no run chooses a degenerate prompt, that an exported classification prompt names its labels, and that a repeat
of the optimize command with the same seed gives the same data and choice.

    python -m benchmarks.readme_runs [--out benchmarks/results/readme_runs.json] [--skip-quickstart] [--teacher-model M]

Other engineers may be running tests on the same 2 cores: `uptime` is recorded before and after each command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TASK = "Classify the sentiment of a movie review as positive or negative"
LABELS = ("positive", "negative")
CLI = [sys.executable, "-m", "promptomatix"]


def load() -> str:
    """The 1/5/15-minute load averages, as `uptime` shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def sh(args: list[str], env: dict[str, str], timeout: float = 3600) -> dict[str, Any]:
    before, t0 = load(), time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    return {"cmd": " ".join(args[2:] if args[:2] == CLI[:2] else args[1:]), "rc": p.returncode,
            "seconds": round(time.monotonic() - t0, 1), "load_before": before, "load_after": load(),
            "stdout": p.stdout, "stderr_tail": p.stderr[-1500:]}  # fmt: skip


def export_text(session_id: str, env: dict[str, str]) -> str:
    p = subprocess.run([*CLI, "sessions", "export", session_id, "--format", "text"], capture_output=True,
                       text=True, env=env, timeout=120)  # fmt: skip
    return p.stdout.strip()


def judge(result: dict[str, Any], exported: str, env: dict[str, str]) -> dict[str, Any]:
    """The checks the issue asks for, on one optimize result (the spec and data report from its session)."""
    from promptomatix.backends.guards import rejection
    from promptomatix.backends.prompt import PromptCandidate
    from promptomatix.sessions import SessionStore
    from promptomatix.task import TaskSpec

    session = SessionStore(env["PROMPTOMATIX_SESSIONS_DIR"]).load(result["session_id"])
    spec = TaskSpec(**session.task_spec)
    version = session.latest_version()
    chosen = PromptCandidate(instructions=(version.instructions if version else None) or "")
    initial = PromptCandidate(instructions=spec.initial_prompt)
    synth = (session.data_report or {}).get("synthetic") or {}
    return {
        "degenerate": rejection(chosen, spec, initial),
        "export_names_labels": all(lab.lower() in exported.lower() for lab in spec.labels or []),
        "generated": synth.get("generated"), "kept": synth.get("accepted"), "dropped": synth.get("rejected"),
        "relabel_agreed": f"{synth.get('agreed')}/{synth.get('checked')}",
        "verdict": result.get("verdict"),
        "test": [(result.get("metrics") or {}).get(k) for k in ("initial_test_score", "optimized_test_score")],
        "calls": (result.get("metrics") or {}).get("calls"),
    }  # fmt: skip


def newest_session(env: dict[str, str]) -> dict[str, Any]:
    """The data report of the newest session (a run that stopped before optimizing has no JSON result)."""
    files = sorted(Path(env["PROMPTOMATIX_SESSIONS_DIR"]).glob("*/session.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return {}
    session = json.loads(files[-1].read_text())
    synth = (session.get("data_report") or {}).get("synthetic") or {}
    return {"status": session.get("status"), "generated": synth.get("generated"), "kept": synth.get("accepted"),
            "dropped": synth.get("rejected"), "relabel_agreed": f"{synth.get('agreed')}/{synth.get('checked')}",
            "error": session.get("error")}  # fmt: skip


def optimize(env: dict[str, str], seed: int, extra: tuple[str, ...] = ("--synthetic-data-size", "30")) -> dict:
    run = sh([*CLI, "optimize", TASK, *extra, "--seed", str(seed), "--json"], env)
    try:
        result = json.loads(run["stdout"])
    except json.JSONDecodeError:
        out = {k: v for k, v in run.items() if k != "stdout"}
        return {**out, **newest_session(env), "error_line": run["stderr_tail"].strip().splitlines()[-1:]}
    exported = export_text(result["session_id"], env)
    rows = (result.get("synthetic_data") or {})
    return {**{k: v for k, v in run.items() if k != "stdout"}, "exported": exported, **judge(result, exported, env),
            "rows": rows, "best_prompt": result.get("best_prompt")}  # fmt: skip


def quickstart(env: dict[str, str], sessions: Path) -> dict[str, Any]:
    run = sh([sys.executable, "examples/quickstart.py"], env)
    from promptomatix.sessions import SessionStore

    store = SessionStore(str(sessions))
    ids = [s.session_id for s in store.list()]
    out: dict[str, Any] = {**{k: v for k, v in run.items() if k != "stdout"}, "stdout_tail": run["stdout"][-800:]}
    if ids:
        session = store.load(ids[0])
        exported = export_text(ids[0], env)
        out["exported"] = exported
        out["export_names_labels"] = all(lab in exported.lower() for lab in LABELS)
        synth = (session.data_report or {}).get("synthetic") or {}
        out.update(generated=synth.get("generated"), kept=synth.get("accepted"), dropped=synth.get("rejected"))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/readme_runs.json")
    ap.add_argument("--skip-quickstart", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teacher-model", default=None, help="as the README's first command (local/qwen2.5-coder-0.5b)")
    args = ap.parse_args(argv)
    synth = ("--synthetic-data-size", "30", *(("--teacher-model", args.teacher_model) if args.teacher_model else ()))
    tmp = Path(tempfile.mkdtemp(prefix="readme_runs_"))
    env = {**os.environ, "PROMPTOMATIX_SESSIONS_DIR": str(tmp / "sessions")}
    report: dict[str, Any] = {"threads": env.get("PROMPTOMATIX_THREADS", "default"), "runs": {}}
    r = report["runs"]
    r["models_run"] = sh([*CLI, "models", "run", "smollm2-135m", "Reply with the word ok.", "--verbose"], env)
    r["optimize"] = optimize(env, args.seed, synth)
    r["dry_run"] = sh([*CLI, "optimize", TASK, "--dry-run", *synth], env)  # the README's "…" is the same sentence
    r["optimize_repeat"] = optimize(env, args.seed, synth)
    a, b = r["optimize"], r["optimize_repeat"]
    same = ("rows", "best_prompt", "generated", "kept", "dropped", "relabel_agreed", "error_line")
    report["repeat_differences"] = [k for k in same if a.get(k) != b.get(k)]
    data = ("--data", "examples/data/reviews.csv", "--input-fields", "review", "--output-fields", "label")
    r["optimize_csv"] = optimize(env, args.seed, data)  # the README's own-data command: a verdict on real rows
    if not args.skip_quickstart:
        qs_env = {**env, "PROMPTOMATIX_SESSIONS_DIR": str(tmp / "quickstart")}
        r["quickstart"] = quickstart(qs_env, tmp / "quickstart")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
