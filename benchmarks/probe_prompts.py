"""Probe: score a few prompt variants of a suite task on its train + valid rows with the embedded 135M model.

Exploratory (RESULTS.md §7, "Spam"): it shows what the label line's order and demos do to a small model's answers
(how many of each label it gives), which the suite's verdicts alone do not show. Demos are drawn from train and
scored on train + valid, so demo rows are scored against themselves: read the demo variants as an upper bound.

    PROMPTOMATIX_THREADS=1 python -m benchmarks.probe_prompts spam 0
"""

from __future__ import annotations

import collections
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def variants(init: str, labels: list[str], train: list[dict[str, Any]], out: str) -> dict[str, Any]:
    from promptomatix.backends.prompt import PromptCandidate

    lines = init.split("\n")
    rev = f"Answer with exactly one of: {', '.join(reversed(labels))}."
    by: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in train:
        by[r[out]].append(r)
    return {
        "initial": PromptCandidate(instructions=init),
        "labels reversed": PromptCandidate(
            instructions="\n".join(rev if ln.startswith("Answer with exactly one of") else ln for ln in lines)
        ),
        "no Given line": PromptCandidate(instructions="\n".join(ln for ln in lines if not ln.startswith("Given:"))),
        "1 demo per label": PromptCandidate(instructions=init, demos=[by[lab][0] for lab in labels if by[lab]]),
        "2 demos per label": PromptCandidate(instructions=init, demos=[x for lab in labels for x in by[lab][:2]]),
    }


def main(argv: list[str]) -> int:
    from benchmarks.suite import load_suite_task
    from promptomatix.backends.prompt import PromptProgram
    from promptomatix.lm.catalog import resolve_local_model
    from promptomatix.lm.local import LocalClient
    from promptomatix.task.infer import infer_task_spec
    from promptomatix.task.overrides import SpecOverrides

    name, seed = argv[0], int(argv[1]) if len(argv) > 1 else 0
    task = load_suite_task(name, seed)
    given = SpecOverrides(task_type=task["task_type"], input_fields=task["input_fields"],
                          output_fields=task["output_fields"], labels=task.get("labels"))  # fmt: skip
    spec = infer_task_spec(task["description"], teacher=None, given=given)
    client = LocalClient(resolve_local_model("local/smollm2-135m", auto_pull=True), model="local/smollm2-135m")

    class LM:
        def chat(self, messages: list[dict[str, str]], **kw: Any) -> str:
            return client.complete(messages, **kw).text

    out, rows = task["output_fields"][0], task["train"] + task["valid"]
    print(f"{name}@s{seed}, {len(rows)} train + valid rows; initial prompt:\n{spec.initial_prompt}\n")
    for label, cand in variants(spec.initial_prompt, list(task.get("labels") or []), task["train"], out).items():
        prog, t0 = PromptProgram(cand, spec, LM()), time.time()

        def answer(row: dict[str, Any], prog: Any = prog) -> str:
            return str(prog({k: row[k] for k in task["input_fields"]}).get(out))

        with ThreadPoolExecutor(2) as ex:
            got = list(ex.map(answer, rows))
        acc = sum(g == r[out] for g, r in zip(got, rows, strict=True)) / len(rows)
        print(f"{label:18s} accuracy {acc:.3f}  answers {dict(collections.Counter(got))}  {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
