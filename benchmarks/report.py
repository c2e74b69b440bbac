"""Machine facts and the markdown tables the runner writes (standard library only)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    try:
        with open("/proc/loadavg", encoding="utf-8") as fh:
            load = [float(x) for x in fh.read().split()[:3]]
    except OSError:
        load = None
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "ram_gb": _ram_gb(),
        "load_average_at_start": load,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("promptomatix", "dspy", "xllamacpp", "optuna", "gepa")},
        "git_commit": _git_commit(),
    }


def machine_line(m: Mapping[str, Any]) -> str:
    v = m.get("versions", {})
    return (
        f"{m.get('date')}; {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('ram_gb')} GB RAM, no GPU; "
        f"Python {m.get('python')}, dspy {v.get('dspy')}, xllamacpp {v.get('xllamacpp')}; "
        f"commit {m.get('git_commit')}; load average at start {m.get('load_average_at_start')}"
    )


# -- result rows ----------------------------------------------------------------------------------------------


def prompt_words(instructions: str, demos: Sequence[Mapping[str, Any]]) -> int:
    """Words of the instructions plus every demo's field names and values (what the length penalty counts,
    without the adapter's fixed boilerplate)."""
    words = len((instructions or "").split())
    for d in demos or []:
        for k, v in d.items():
            if k.startswith("_"):
                continue
            words += 1 + len(str(v).split())
    return words


def fmt_score(s: Mapping[str, Any] | None) -> str:
    if not s:
        return "-"
    return f"{s['mean']:.3f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}]"


def _fmt_time(t: float | None) -> str:
    if t is None:
        return "-"
    return f"{t:.0f} s" if t >= 10 else f"{t:.1f} s"


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """One row per task × method. Score = held-out test (balanced accuracy for classification) with its
    bootstrap 95% CI; 'initial' = the initial prompt scored under that method's own rendering."""
    out = [
        "| task | method | test score [95% CI] | initial, same rendering | Δ | LM calls (cached) | tokens | wall time "
        "| prompt words (demos) | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("error"):
            out.append(
                f"| {r['task']} | {r['method']} | **failed** | - | - | {r.get('calls', '-')} | - "
                f"| {_fmt_time(r.get('time_s'))} | - | {_cell(r['error'])} |"
            )
            continue
        test, init = r.get("test"), r.get("initial_test")
        delta = f"{test['mean'] - init['mean']:+.3f}" if test and init and r["method"] != "initial" else "-"
        notes = []
        if r.get("stop_reason") and r["stop_reason"] != "completed":
            notes.append(r["stop_reason"])
        if r.get("note"):
            notes.append(r["note"])
        if test is None:
            notes.append("no held-out score")
        elif test.get("n_errors"):
            notes.append(f"{test['n_errors']} of {test['n']} test predictions failed (scored 0)")
        out.append(
            f"| {r['task']} | {r['method']} | {fmt_score(test)} | {fmt_score(init)} | {delta} "
            f"| {r.get('calls', '-')} ({r.get('cached_calls', 0)}) | {r.get('tokens') if r.get('tokens') is not None else '-'} "
            f"| {_fmt_time(r.get('time_s'))} | {r.get('prompt_words', '-')} ({r.get('n_demos', 0)}) "
            f"| {_cell('; '.join(notes))} |"
        )
    return "\n".join(out)


def tasks_table(tasks: Mapping[str, Mapping[str, Any]]) -> str:
    out = ["| task | type | train/valid/test | headline metric |", "|---|---|---|---|"]
    for name, t in tasks.items():
        sizes = "/".join(str(t["sizes"][s]) for s in ("train", "valid", "test"))
        metric = {
            "classification": "balanced accuracy (label match)",
            "reasoning": "numeric equality",
            "qa": "exact match, else token F1",
            "summarization": "LLM judge + ROUGE-L",
        }.get(t["task_type"], t["task_type"])
        out.append(f"| {name} | {t['task_type']} | {sizes} | {metric} |")
    return "\n".join(out)


def markdown_report(doc: Mapping[str, Any]) -> str:
    """The whole run as markdown: command, machine, tasks, results."""
    meta = doc["meta"]
    lines = [
        f"## Quality run {meta['machine']['date']}",
        "",
        f"Command: `{meta['command']}`",
        "",
        f"Model: `{meta['model']}`"
        + (f", teacher `{meta['teacher_model']}`" if meta.get("teacher_model") else " (also the teacher)")
        + f"; seed {meta['seed']}; {meta.get('num_threads', 4)} threads; total wall time "
        + f"{_fmt_time(meta.get('total_time_s'))}.",
        "",
        f"Machine: {machine_line(meta['machine'])}.",
        "",
        tasks_table(doc["tasks"]),
        "",
        results_table(doc["results"]),
        "",
    ]
    summary = seeds_table(doc["results"])
    if summary:
        lines += ["Over the data splits (`task@sN` = split seed N):", "", summary, ""]
    return "\n".join(lines)


def seeds_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per task × method over several data splits: each split's Δ against the initial prompt, and the mean.
    Empty unless some task ran on more than one split (`--data-seeds`)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        if "@s" in r["task"] and r["method"] != "initial":
            groups.setdefault((r["task"].split("@s")[0], r["method"]), []).append(r)
    if not any(len(g) > 1 for g in groups.values()):
        return ""
    out = [
        "| task | method | splits | initial → optimized, per split | Δ per split | mean Δ | better / same / worse |",
        "|---|---|---|---|---|---|---|",
    ]
    for (task, method), group in groups.items():
        done = [r for r in group if r.get("test") and r.get("initial_test")]
        deltas = [r["test"]["mean"] - r["initial_test"]["mean"] for r in done]
        pairs = ", ".join(f"{r['initial_test']['mean']:.3f} → {r['test']['mean']:.3f}" for r in done)
        tally = f"{sum(d > 1e-9 for d in deltas)} / {sum(abs(d) <= 1e-9 for d in deltas)} / {sum(d < -1e-9 for d in deltas)}"
        mean = f"{sum(deltas) / len(deltas):+.3f}" if deltas else "-"
        out.append(
            f"| {task} | {method} | {len(group)} ({len(group) - len(done)} failed) | {pairs} "
            f"| {', '.join(f'{d:+.3f}' for d in deltas)} | {mean} | {tally} |"
        )
    return "\n".join(out)
