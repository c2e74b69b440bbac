"""Held-out scoring of both prompts on the same rows, and what is kept of it: scores, the paired verdict, the
per-row results and the quality-vs-length front of the candidates.

The initial and the optimized prompt are scored on exactly the same rows, so the comparison is paired; the verdict
(metrics.verdict) decides improved / no detectable difference / worse with an exact test. When there is no test
split the rows are the valid split, which the search saw: the scores are shown but the verdict is "no held-out test".
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from promptomatix.backends.base import BackendResult, RunContext
from promptomatix.backends.rounds import RowPool, beside
from promptomatix.errors import BudgetExceeded, PluginError
from promptomatix.metrics.evaluator import EvalReport, ExampleRecord
from promptomatix.metrics.pareto import candidate_points, pareto_front
from promptomatix.metrics.text import normalize_label
from promptomatix.metrics.verdict import PairedVerdict, balanced_weights, paired_verdict
from promptomatix.result import ScoreCI

log = logging.getLogger(__name__)

Predict = Callable[[dict[str, Any]], Any]
MAX_STORED_EXAMPLES = 300
_MAX_TEXT = 500


@dataclass
class HeldOut:
    """Both prompts' held-out scores (None when the budget ran out before scoring) and the reports behind them."""

    split: str
    initial: ScoreCI | None
    best: ScoreCI | None
    initial_report: EvalReport | None = None
    best_report: EvalReport | None = None
    same_prompt: bool = False
    label_field: str | None = None  # classification: the verdict may weigh rows as balanced accuracy (row_weights)
    answered_by: str = ""  # a plugin backend's predictors gave the answers: "backend 'x' (plugin p)"
    predictor_error: PluginError | None = None  # the first failure of such a predictor (not the task model's)


def _evaluate(
    ctx: RunContext, predict: Predict, rows: list[dict[str, Any]], pool: Executor | None = None
) -> tuple[ScoreCI | None, EvalReport | None]:
    try:
        rep = ctx.evaluate(predict, rows, final=True, pool=pool)
    except BudgetExceeded as e:
        log.warning("no held-out score: %s", e.message)
        return None, None
    score = ScoreCI(
        mean=rep.primary, ci_low=rep.primary_ci[0], ci_high=rep.primary_ci[1], n=rep.n, accuracy=rep.accuracy,
        macro_f1=rep.macro_f1, balanced_accuracy=rep.balanced_accuracy, n_errors=rep.n_errors,
    )  # fmt: skip
    return score, rep


def score_held_out(ctx: RunContext, result: BackendResult, rows: list[dict[str, Any]], split: str) -> HeldOut:
    """Score the initial and the optimized prompt on the same rows (once when they are the same prompt)."""
    label = ctx.spec.label_field
    initial_p, best_p, by = _predictors(result)
    if result.prompt == result.initial_prompt:
        initial, initial_rep = _evaluate(ctx, initial_p, rows)
        held = HeldOut(split, initial, initial, initial_rep, initial_rep, same_prompt=True, label_field=label)
    elif not ctx.boundary.surely_affords(2 * len(rows)):  # the initial prompt first: it is the reference
        initial, initial_rep = _evaluate(ctx, initial_p, rows)
        best, best_rep = _evaluate(ctx, best_p, rows)
        held = HeldOut(split, initial, best, initial_rep, best_rep, label_field=label)
    else:
        (initial, initial_rep), (best, best_rep) = _both(ctx, best_p, initial_p, rows)
        held = HeldOut(split, initial, best, initial_rep, best_rep, label_field=label)
    held.answered_by = by
    held.predictor_error = next((e for p in (initial_p, best_p) if (e := getattr(p, "first_error", None))), None)
    return held


def _both(ctx: RunContext, best: Predict, initial: Predict, rows: list[dict[str, Any]]) -> tuple[Any, Any]:
    """Both prompts scored at once on one pool of `num_threads` workers: one stream of calls, no pause between
    the two evaluations and no threads started for the second. A Ctrl-C skips the queued rows of both."""
    pool = RowPool(ctx.num_threads)
    try:
        return beside(pool, lambda: _evaluate(ctx, best, rows, pool), lambda: _evaluate(ctx, initial, rows, pool))
    finally:
        pool.shutdown(wait=False)


def _predictors(result: BackendResult) -> tuple[Predict, Predict, str]:
    """The initial and best predictors; a plugin backend's are guarded, so their failures name the plugin (they
    were reported as the task model failing, with a hint to check --model/--api-base)."""
    from promptomatix.backends.registry import backend_registry
    from promptomatix.plugins.manager import BUILTINS

    initial, best = result.initial_predict, result.best_predict
    name = backend_registry().canonical(result.backend)
    entry = backend_registry().get(name) if name else None
    if entry is None or not entry.plugin or entry.plugin == BUILTINS:
        return initial, best, ""
    guard = functools.partial(GuardedPredictor, backend=entry.name, plugin=entry.plugin)
    return guard(initial, "initial"), guard(best, "optimized"), f"backend {entry.name!r} (plugin {entry.plugin})"


class GuardedPredictor:
    """A plugin backend's predictor: what it raises, or an answer that is no prediction at all (None, a number),
    is a PluginError naming it; the first one is kept for the run's failure message. A model error raised inside
    it (LMCallError, a budget stop) passes unchanged: that one is the task model's."""

    def __init__(self, predict: Predict, which: str, *, backend: str, plugin: str) -> None:
        self.predict, self.plugin = predict, plugin
        self.what = f"backend {backend!r} {which} predictor"
        self.first_error: PluginError | None = None
        self._lock = threading.Lock()

    def __call__(self, inputs: dict[str, Any]) -> Any:
        from promptomatix.plugins.manager import fix_hint, plugin_code

        try:
            with plugin_code(self.plugin, self.what):
                out = self.predict(inputs)
            if out is None or isinstance(out, (bool, int, float, complex, bytes)):
                raise PluginError(f"plugin {self.plugin}: {self.what} returned {type(out).__name__} {out!r}"[:160]
                                  + ", not a prediction", hint="return a dict of the output fields; "
                                  + fix_hint(self.plugin), plugin=self.plugin)  # fmt: skip
        except PluginError as e:
            with self._lock:
                self.first_error = self.first_error or e
            raise
        return out


def verdict(held: HeldOut, result: BackendResult, *, seed: int = 0) -> PairedVerdict:
    """The paired verdict on the rows both prompts were scored on."""
    words = {"initial_words": len(result.initial_prompt.split()), "optimized_words": len(result.prompt.split()),
             "valid_gain": result.valid_raw - result.initial_valid_raw}  # fmt: skip
    if held.split != "test":
        return PairedVerdict(outcome="no_test", split=held.split, same_prompt=held.same_prompt, **words,
                             notes=[f"there is no held-out test split; the {held.split} rows were seen by the search"])  # fmt: skip
    if held.initial_report is None or held.best_report is None:
        return PairedVerdict(outcome="no_test", split=held.split, same_prompt=held.same_prompt, **words,
                             notes=["the budget ran out before both prompts were scored on the test rows"])  # fmt: skip
    a = {r.index: r for r in held.initial_report.records}
    b = {r.index: r for r in held.best_report.records}
    common = sorted(set(a) & set(b))
    errors = sum(a[i].error is not None or b[i].error is not None for i in common)
    return paired_verdict(
        [a[i].raw_score for i in common], [b[i].raw_score for i in common], errors=errors, split=held.split,
        same_prompt=held.same_prompt, seed=seed, weights=row_weights(held, [a[i] for i in common]), **words,
    )  # fmt: skip


def row_weights(held: HeldOut, records: list[ExampleRecord]) -> list[float] | None:
    """For classification under the built-in metric the test score shown is balanced accuracy, so the verdict
    weighs each row as it does (a gain on the majority label must not be called an improvement while balanced
    accuracy falls). Under a metric the user gave the score shown is its plain mean: rows are not weighted."""
    field, rep = held.label_field, held.initial_report
    if field is None or rep is None or not rep.primary_is_balanced_accuracy or any(r.user_metric for r in records):
        return None
    if any(r.gold.get(field) in (None, "") for r in records):
        return None
    return balanced_weights([normalize_label(r.gold[field]) for r in records])


def _short(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        return value[: _MAX_TEXT - 1] + "…"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def test_examples(held: HeldOut) -> list[dict[str, Any]]:
    """Per held-out row, what each prompt answered and scored (capped, long texts shortened) for the session."""
    if held.best_report is None:
        return []
    initial = {r.index: r for r in (held.initial_report.records if held.initial_report else [])}
    rows = []
    for r in sorted(held.best_report.records, key=lambda r: r.index)[:MAX_STORED_EXAMPLES]:
        first = initial.get(r.index)
        rows.append(_short({
            "index": r.index, "input": r.inputs, "expected": r.gold, "got": r.output, "score": r.raw_score,
            "feedback": r.feedback, "error": r.error,
            "initial_got": first.output if first else None, "initial_score": first.raw_score if first else None,
        }))  # fmt: skip
    return rows


def pareto_ids(result: BackendResult) -> list[int]:
    """Ids of the candidates on the quality-vs-length front (raw valid score vs words the task model reads)."""
    return [p.candidate_id for p in pareto_front(candidate_points(c.model_dump() for c in result.candidates))]
