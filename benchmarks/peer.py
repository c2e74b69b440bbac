"""The peer: plain DSPy MIPROv2 (auto="light") written the way the DSPy docs show, on the same local model.

What is the same as Promptomatix's dspy backend: the model, its engine (our `make_dspy_lm` bridge over an LM
boundary from `build_boundary`, so calls and tokens are counted the same way), `dspy.JSONAdapter()` with a
`Literal[...]` label output (llama.cpp grammar-constrained decoding), the train/valid/test rows, and the
held-out scoring (MetricsManager's final per-example metric; balanced accuracy for classification). What
differs is only the optimization: stock `dspy.MIPROv2(metric=..., auto="light")` + `.compile(program,
trainset=..., valset=...)` on a bare `dspy.Predict(Signature)`, no length penalty, no selection against the
initial program, the task description as the instructions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from promptomatix.lm.boundary import Budget

PEER_DEMOS = (3, 3)  # (max_bootstrapped_demos, max_labeled_demos): the dspy backend's quick preset


def make_signature(task: Mapping[str, Any]) -> Any:
    """`dspy.Signature` for the task: str inputs, a `Literal[labels]` output for classification, str otherwise."""
    import dspy

    fields: dict[str, tuple[Any, Any]] = {}
    for name in task["input_fields"]:
        fields[name] = (str, dspy.InputField())
    labels = task.get("labels")
    for name in task["output_fields"]:
        ann = Literal[tuple(labels)] if labels else str  # type: ignore[valid-type]
        fields[name] = (ann, dspy.OutputField())
    return dspy.Signature(fields, task["description"])


def make_metric(task: Mapping[str, Any]) -> tuple[Callable[..., float], Any]:
    """A docs-style `metric(example, pred, trace=None)`: MetricsManager's final per-example score, so a peer
    answer counts as right exactly when a Promptomatix answer would (label match / numeric equality / EM-F1)."""
    from promptomatix.metrics import MetricsManager

    mm = MetricsManager(
        output_fields=task["output_fields"],
        lambda_penalty=0.0,
        label_set=task.get("labels"),
        input_fields=task["input_fields"],
    )
    final = mm.get_final_eval_metrics(task["task_type"])

    def metric(example: Any, pred: Any, trace: Any = None) -> float:
        return final(example, pred)

    return metric, mm


def score_results(task: Mapping[str, Any], results: list[tuple[Any, Any, Any]], mm: Any, seed: int) -> dict[str, Any]:
    """Mean + bootstrap 95% CI from dspy.Evaluate's (example, prediction, score) triples; for classification
    balanced accuracy with the same joint bootstrap Promptomatix's Evaluator uses."""
    from promptomatix.metrics.evaluator import INVALID_LABEL, Evaluator, bootstrap_ci, classification_stats
    from promptomatix.metrics.text import normalize_label

    scores = [float(s or 0.0) for *_, s in results]
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    lo, hi = bootstrap_ci(scores, 1000, seed)
    out: dict[str, Any] = {"mean": mean, "ci_low": lo, "ci_high": hi, "n": n, "accuracy": mean}
    labels = task.get("labels")
    if labels and len(task["output_fields"]) == 1:
        field = task["output_fields"][0]
        golds, preds = [], []
        for example, pred, _ in results:
            gold = normalize_label(example[field])
            value = pred.get(field) if hasattr(pred, "get") else None
            label, _reason = mm.read_label(value, gold) if value is not None else ("", "")
            golds.append(gold)
            preds.append(label or INVALID_LABEL)
        stats = classification_stats(golds, preds)
        ba = stats["balanced_accuracy"]
        # Same percentile bootstrap over (gold, prediction) pairs as Evaluator's report (a private helper).
        ba_lo, ba_hi = Evaluator(seed=seed)._balanced_accuracy_ci(golds, preds, ba)
        out.update(mean=ba, ci_low=ba_lo, ci_high=ba_hi, balanced_accuracy=ba, macro_f1=stats["macro_f1"])
        out["accuracy"] = stats["accuracy"]
    return out


def _examples(task: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The rows as `dspy.Example`s with the task's inputs marked, the way the DSPy docs build a trainset."""
    import dspy

    names = [*task["input_fields"], *task["output_fields"]]
    return [dspy.Example(**{k: row[k] for k in names}).with_inputs(*task["input_fields"]) for row in rows]


def _boundaries(
    settings: Any, budget: Budget, clients: dict[str, Any] | None, part_dir: Path | None
) -> tuple[Any, Any]:
    """(optimization, held-out scoring): the scoring is never cut short by the optimization's budget, so it gets a
    second boundary on the same clients. With `part_dir` their caches are on disk there, replayed by a next
    attempt at the part (benchmarks/carry.py)."""
    from benchmarks.carry import ReplayCache
    from promptomatix.lm.factory import build_boundary

    opt_boundary = build_boundary(settings, budget=budget, clients=clients)
    eval_boundary = build_boundary(settings, clients=dict(opt_boundary.clients))
    if part_dir is not None:
        opt_boundary.cache = ReplayCache(part_dir / "optimization.sqlite")
        eval_boundary.cache = ReplayCache(part_dir / "scoring.sqlite")
    return opt_boundary, eval_boundary


def _compile_peer(
    program: Any,
    metric: Callable[..., float],
    trainset: list[Any],
    valset: list[Any],
    *,
    lm: Any,
    prompt_lm: Any,
    auto: str,
    num_threads: int,
    seed: int,
) -> tuple[Any, str]:
    """The docs' recipe (stock MIPROv2 + compile); a budget stop keeps the initial program and says so."""
    import dspy

    from promptomatix.errors import BudgetStop

    stop_reason = "completed"
    compiled = program
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        optimizer = dspy.MIPROv2(
            metric=metric, auto=auto, prompt_model=prompt_lm, num_threads=num_threads, seed=seed, verbose=False
        )
        try:
            compiled = optimizer.compile(
                program.deepcopy(),
                trainset=trainset,
                valset=valset,
                max_bootstrapped_demos=PEER_DEMOS[0],
                max_labeled_demos=PEER_DEMOS[1],
            )
        except BudgetStop as stop:
            stop_reason = f"budget: {stop.exceeded.message} (kept the initial program)"
    return compiled, stop_reason


def _usage_counts(opt_boundary: Any, eval_boundary: Any) -> dict[str, Any]:
    """Calls and tokens of both boundaries; the search's calls are the optimization boundary's alone. An answer
    replayed from an earlier attempt at the part was a call of that attempt: it counts as a call, not a hit."""
    from benchmarks.carry import replays

    usage = [opt_boundary.usage().total, eval_boundary.usage().total]
    (opt_calls, opt_tokens), (eval_calls, eval_tokens) = replays(opt_boundary), replays(eval_boundary)
    return {
        "calls": sum(u.calls for u in usage) + opt_calls + eval_calls,
        "cached_calls": sum(u.cached_calls for u in usage) - opt_calls - eval_calls,
        "tokens": sum(u.tokens for u in usage) + opt_tokens + eval_tokens,
        "optimization_calls": usage[0].calls + opt_calls,
        "search_calls": usage[0].calls + opt_calls,
        "replayed_calls": opt_calls + eval_calls,
    }


def _test_rows(optimized_results: list[Any], initial_results: list[Any]) -> list[dict[str, Any]]:
    """Per test row, both programs' scores: dspy.Evaluate keeps devset order, so the index is the test row's."""
    return [
        {"index": i, "score": float(a[2] or 0.0), "initial_score": float(b[2] or 0.0), "error": False}
        for i, (a, b) in enumerate(zip(optimized_results, initial_results, strict=True))
    ]


def run_peer(
    task: Mapping[str, Any],
    *,
    model: str,
    teacher_model: str | None = None,
    seed: int = 0,
    num_threads: int = 4,
    max_calls: int | None = None,
    max_minutes: float | None = None,
    clients: dict[str, Any] | None = None,
    auto: str = "light",
    part_dir: Path | None = None,
) -> dict[str, Any]:
    """Compile the peer on train/valid, score the initial and compiled programs on test. Returns a result row
    (same keys as the runner's Promptomatix rows). A budget applies to the optimization only. `part_dir` keeps
    the calls' answers on disk so that a next attempt replays them (see benchmarks/carry.py)."""
    import dspy

    from promptomatix.backends.dspy_modules import instructions_text, program_demos, render_program
    from promptomatix.lm.dspy_engine import make_dspy_lm
    from promptomatix.lm.factory import ModelSettings

    t0 = time.perf_counter()
    settings = ModelSettings(model=model, teacher_model=teacher_model, n_parallel=max(4, num_threads))
    budget = Budget(max_calls=max_calls, max_seconds=max_minutes * 60 if max_minutes else None)
    opt_boundary, eval_boundary = _boundaries(settings, budget, clients, part_dir)
    eval_lm = make_dspy_lm(eval_boundary.role("task"), temperature=0.0, max_tokens=256)
    opt_lm = make_dspy_lm(opt_boundary.role("task"), temperature=0.0, max_tokens=256)
    prompt_lm = make_dspy_lm(opt_boundary.role("teacher"), temperature=1.0, max_tokens=1024) if teacher_model else None
    trainset, valset, testset = (_examples(task, task[split]) for split in ("train", "valid", "test"))
    metric, mm = make_metric(task)
    program = dspy.Predict(make_signature(task))
    evaluate = dspy.Evaluate(devset=testset, metric=metric, num_threads=num_threads, display_progress=False)

    with dspy.context(lm=eval_lm, adapter=dspy.JSONAdapter()):
        initial_results = evaluate(program).results
        initial = score_results(task, initial_results, mm, seed)
    compiled, stop_reason = _compile_peer(
        program, metric, trainset, valset, lm=opt_lm, prompt_lm=prompt_lm, auto=auto, num_threads=num_threads, seed=seed
    )
    with dspy.context(lm=eval_lm, adapter=dspy.JSONAdapter()):
        optimized_results = evaluate(compiled).results
        optimized = score_results(task, optimized_results, mm, seed)
        prompt = render_program(compiled, dspy.JSONAdapter())

    return {
        "test": optimized,
        "initial_test": initial,
        **_usage_counts(opt_boundary, eval_boundary),
        "test_rows": _test_rows(optimized_results, initial_results),
        "time_s": round(time.perf_counter() - t0, 2),
        "instructions": instructions_text(compiled),
        "demos": program_demos(compiled),
        "best_prompt": prompt,
        "stop_reason": stop_reason,
        "settings": {"auto": auto, "max_bootstrapped_demos": PEER_DEMOS[0], "max_labeled_demos": PEER_DEMOS[1]},
    }
