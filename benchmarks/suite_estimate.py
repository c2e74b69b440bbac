"""The dry run's estimate against what the suite's real-model runs spent (issue 14, item 6).

For each meta, meta-third and dspy-miprov2 part, the same task split, method and budget go through
`process_input(dry_run=True)` with fake clients (the estimate depends on sizes, preset and budget, not on what a
model answers) and the estimated spec + optimizer calls are set against the part's search calls (every call
before the held-out scoring). Fake-model runs are within ±15% (tests/test_estimate.py); this table shows how far
a 135M task model and teacher move a run from the typical run the estimate assumes.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

ESTIMATED = ("meta", "meta-third", "dspy-miprov2")


def dry_estimate(task: dict[str, Any], method: str, max_calls: int | None, seed: int) -> tuple[int, int | None]:
    """Spec + optimizer calls the dry run of this part's command estimates: typical, and (meta) when every
    candidate fails its screening. The part's seed is passed: MIPROv2's trials, and so its estimate, follow it."""
    from benchmarks.engine import fake_clients
    from benchmarks.run import PROCESS_METHODS
    from promptomatix.api import process_input

    backend = "meta" if method == "meta-third" else method
    with tempfile.TemporaryDirectory(prefix="pmx-est-") as sdir:
        res = process_input(
            raw_input=task["description"], train_data=task["train"], valid_data=task["valid"],
            test_data=task["test"], input_fields=task["input_fields"], output_fields=task["output_fields"],
            labels=task.get("labels"), task_type=task["task_type"], search_type="quick", max_calls=max_calls, seed=seed,
            sessions_dir=sdir, clients=fake_clients(0.0), dry_run=True, **PROCESS_METHODS.get(backend, {}),
        )  # fmt: skip
    est = res.estimated_calls
    before = int(est.get("spec", 0) + est.get("data", 0))
    least = re.search(r"about (\d+) if every candidate fails", " ".join(res.search_plan))
    return before + int(est.get("optimize", 0)), (before + int(least.group(1))) if least else None


def estimate_lines(parts: dict[tuple[str, int, str], dict[str, Any]]) -> list[str]:
    """One row per estimated part: estimate, actual search calls, ratio, and why the run stopped."""
    from benchmarks.suite import load_suite_task

    lines = ["| part | dry-run estimate | if every candidate fails | actual search calls | ratio | within ±15% | "
             "how the run ended |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    ratios: dict[str, list[float]] = {}
    for (name, seed, method), row in sorted(parts.items()):
        if method not in ESTIMATED or row.get("error") or not row.get("search_calls"):
            continue
        est, least = dry_estimate(load_suite_task(name, seed), method, row["_meta"].get("max_calls"), seed)
        ratio = est / row["search_calls"]
        ratios.setdefault(method, []).append(ratio)
        ended = str(row.get("stop_reason") or "").split(";")[0][:70]
        lines.append(f"| {name}@s{seed} {method} | {est} | {least or '-'} | {row['search_calls']} | {ratio:.2f} | "
                     f"{'yes' if 0.85 <= ratio <= 1.15 else 'no'} | {ended} |")  # fmt: skip
    lines.append("")
    for method, rs in ratios.items():
        inside = sum(0.85 <= r <= 1.15 for r in rs)
        lines.append(f"- {method}: within ±15% on {inside} of {len(rs)} parts; ratios {min(rs):.2f}–{max(rs):.2f}.")
    return lines
