"""Evaluator: run a predictor over examples in parallel; report mean, bootstrap 95% CI and per-example rows.

Decisions:
- A predictor exception scores the example 0 and is counted (upstream swallowed them silently); callers decide
  when too many errors make the scores meaningless (run_guard).
- A metric that raises is a MetricError at the first example: a metric bug would hit every row.
- When `max_errors` is set and the error count reaches it, the run stops and returns `stopped_early=True`
  with the records finished so far (not raising), so the caller can still show what happened.
- BudgetExceeded always propagates at once: the caller stops the run and keeps the best so far.
  MetricError from the score function (e.g. a gold field missing from the data) propagates too: it is a
  data or configuration bug that would hit every example.
- For classification (`label_field` given) the report adds accuracy, macro-F1 and balanced accuracy, because
  a predictor that always answers one label gets a high accuracy on skewed data but not a high balanced one.
  Balanced accuracy is the primary score only under the built-in metric: rows scored by a metric the user gave
  (`ExampleRecord.user_metric`) make the primary score that metric's mean, and its CI the mean's, so candidates
  are ranked and reported by the user's notion of quality (balanced accuracy stays in the report beside it).
- The CI of balanced accuracy is a bootstrap stratified by gold label: each resample keeps every label's
  support, so a resample cannot drop the rare label and call a constant predictor perfect.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from concurrent.futures import wait as wait_all
from typing import Any

from pydantic import BaseModel, Field

from promptomatix.errors import BudgetExceeded, LMCallError, MetricError, ModelUnavailableError
from promptomatix.metrics.manager import MISSING, get_field, record_items
from promptomatix.metrics.result import MetricResult
from promptomatix.metrics.text import normalize_label, shorten

logger = logging.getLogger(__name__)

ERROR_LABEL = "<error>"
INVALID_LABEL = "<invalid>"


class ExampleRecord(BaseModel):
    index: int
    inputs: dict[str, Any]
    output: dict[str, Any] | None = None
    gold: dict[str, Any]
    score: float
    raw_score: float
    feedback: str = ""
    error: str | None = None
    details: dict[str, float] = Field(default_factory=dict)
    predicted: str | None = None  # normalized label read by a classification metric ("" = unreadable)
    user_metric: bool = False  # scored by a metric the user gave (MetricResult.user_metric)


class LabelStats(BaseModel):
    support: int  # gold examples with this label
    predicted: int  # examples predicted as this label
    correct: int
    precision: float
    recall: float
    f1: float


class EvalReport(BaseModel):
    mean: float
    mean_raw: float
    ci_low: float
    ci_high: float
    n: int
    n_errors: int
    n_skipped: int = 0
    stopped_early: bool = False
    elapsed_s: float = 0.0
    details: dict[str, float] = Field(default_factory=dict)  # mean of each MetricResult.details key
    records: list[ExampleRecord] = Field(default_factory=list)
    accuracy: float | None = None
    macro_f1: float | None = None
    balanced_accuracy: float | None = None
    label_counts: dict[str, int] = Field(default_factory=dict)
    prediction_counts: dict[str, int] = Field(default_factory=dict)
    per_label: dict[str, LabelStats] = Field(default_factory=dict)
    balanced_accuracy_ci: tuple[float, float] | None = None
    user_metric: bool = False  # some row was scored by a metric the user gave: its mean is the primary score

    @property
    def primary_is_balanced_accuracy(self) -> bool:
        """Balanced accuracy is the headline only for classification under the built-in metric."""
        return self.balanced_accuracy is not None and not self.user_metric

    @property
    def primary_ci(self) -> tuple[float, float]:
        """The 95% CI of `primary`: bootstrapped balanced accuracy (built-in classification), else of the mean."""
        if self.primary_is_balanced_accuracy and self.balanced_accuracy_ci is not None:
            return self.balanced_accuracy_ci
        return self.ci_low, self.ci_high

    @property
    def primary(self) -> float:
        """The headline number: balanced accuracy for built-in classification, else the mean score (a user
        metric's mean, also for classification: the user's metric defines quality)."""
        if self.primary_is_balanced_accuracy and self.balanced_accuracy is not None:
            return self.balanced_accuracy
        return self.mean


def bootstrap_ci(
    scores: Sequence[float], n_bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, deterministic for a seed; widened to contain the mean."""
    if not scores:
        return 0.0, 0.0
    n = len(scores)
    mean = sum(scores) / n
    if n == 1 or n_bootstrap <= 0:
        return mean, mean
    import numpy as np

    values = np.asarray(scores, dtype=float)
    means = np.sort(values[np.random.default_rng(seed).integers(0, n, size=(n_bootstrap, n))].mean(axis=1))
    lo = float(means[math.floor(alpha / 2 * n_bootstrap)])
    hi = float(means[min(n_bootstrap - 1, math.ceil((1 - alpha / 2) * n_bootstrap) - 1)])
    return min(lo, mean), max(hi, mean)


def classification_stats(golds: Sequence[str], preds: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (over gold and predicted labels), balanced accuracy (mean recall per gold label)."""
    n = len(golds)
    pairs = list(zip(golds, preds, strict=True))
    gold_counts, pred_counts = Counter(golds), Counter(preds)
    correct = Counter(g for g, p in pairs if g == p)
    classes = sorted(set(golds) | {p for p in preds if p not in (ERROR_LABEL, INVALID_LABEL)})
    per_label: dict[str, LabelStats] = {}
    for label in classes:
        tp, support, predicted = correct[label], gold_counts[label], pred_counts[label]
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
        per_label[label] = LabelStats(
            support=support, predicted=predicted, correct=tp, precision=precision, recall=recall, f1=f1
        )
    gold_classes = [c for c in classes if gold_counts[c]]
    return {
        "accuracy": sum(correct.values()) / n if n else 0.0,
        "macro_f1": sum(s.f1 for s in per_label.values()) / len(per_label) if per_label else 0.0,
        "balanced_accuracy": (
            sum(per_label[c].recall for c in gold_classes) / len(gold_classes) if gold_classes else 0.0
        ),
        "label_counts": dict(sorted(gold_counts.items())),
        "prediction_counts": dict(sorted(pred_counts.items())),
        "per_label": per_label,
    }


def _release(executor: Executor, futures: list[Future[Any]], own: bool, *, wait: bool) -> None:
    """Drop the queued rows of this evaluation (and, with `wait`, let its running ones finish); a shared pool
    stays open for the other evaluations on it."""
    if own:
        executor.shutdown(wait=wait, cancel_futures=True)
        return
    for fut in futures:
        fut.cancel()
    if wait:
        wait_all(futures)


class _ErrorCount:
    """Row errors counted across the worker threads; `stop` is set when they reach `max_errors`."""

    def __init__(self, max_errors: int | None) -> None:
        self.max_errors = max_errors
        self.count = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1
            if self.max_errors is not None and self.count >= self.max_errors:
                self.stop.set()


def _drive(
    executor: Executor,
    own: bool,
    one: Callable[[int, Any], ExampleRecord | None],
    examples: Sequence[Any],
    stop: threading.Event,
) -> tuple[list[Future[ExampleRecord | None]], bool]:
    """Submit every example and wait; a worker's exception stops the rest and propagates at once. Returns the
    futures and whether `stop` was set (max_errors), after releasing this evaluation's share of the pool."""
    futures: list[Future[ExampleRecord | None]] = []
    try:
        futures = [executor.submit(one, i, ex) for i, ex in enumerate(examples)]
        for fut in as_completed(futures):
            fut.result()  # re-raises BudgetExceeded / MetricError from the worker at once
            if stop.is_set():
                break
    except KeyboardInterrupt:  # do not wait for calls in flight (a hung provider call would hold Ctrl-C)
        stop.set()
        _release(executor, futures, own, wait=False)
        raise
    except BaseException:
        stop.set()
        _release(executor, futures, own, wait=True)
        raise
    stopped = stop.is_set()
    stop.set()
    _release(executor, futures, own, wait=True)
    return futures, stopped


def _finished(futures: Sequence[Future[ExampleRecord | None]]) -> list[ExampleRecord]:
    """The records of the examples that ran, in example order: a stopped run leaves queued ones unrun."""
    done: dict[int, ExampleRecord] = {}
    for fut in futures:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            rec = fut.result()
            if rec is not None:
                done[rec.index] = rec
    return [done[i] for i in sorted(done)]


class Evaluator:
    """Parallel evaluation with error accounting and a deterministic bootstrap CI."""

    def __init__(
        self, num_threads: int = 4, max_errors: int | None = None, n_bootstrap: int = 1000, seed: int = 0
    ) -> None:
        if num_threads < 1:
            raise MetricError(f"num_threads must be >= 1, got {num_threads}")
        self.num_threads = num_threads
        self.max_errors = max_errors
        self.n_bootstrap = n_bootstrap
        self.seed = seed

    def run(
        self,
        predict: Callable[[dict[str, Any]], Any],
        examples: Sequence[Any],
        score_fn: Callable[[Any, Any], MetricResult],
        input_fields: Sequence[str],
        output_fields: Sequence[str],
        label_field: str | None = None,
        *,
        pool: Executor | None = None,
    ) -> EvalReport:
        """Run `predict(inputs) -> outputs` on every example; score it with `score_fn(example, outputs)`.

        `pool` lets several evaluations run at once on one set of worker threads (so together they never have
        more calls in flight than its workers); without it the evaluation has `num_threads` workers of its own."""
        start = time.perf_counter()
        errors = _ErrorCount(self.max_errors)  # its `stop` is set on max_errors or an exception; queued rows skip

        def one(index: int, example: Any) -> ExampleRecord | None:
            if errors.stop.is_set():
                return None
            rec = self._one(index, example, predict, score_fn, input_fields, output_fields)
            if rec.error is not None:
                errors.add()  # counted in the worker, so a fast failing predictor cannot outrun the limit
            return rec

        own = pool is None
        executor = pool or ThreadPoolExecutor(max_workers=self.num_threads, thread_name_prefix="promptomatix-eval")
        futures, stopped = _drive(executor, own, one, examples, errors.stop)
        if stopped:
            logger.warning("evaluation stopped after %d errors (max_errors=%s)", errors.count, self.max_errors)
        report = self._report(_finished(futures), len(examples), stopped, label_field)
        report.elapsed_s = time.perf_counter() - start
        logger.info(
            "evaluated %d examples: mean %.3f [%.3f, %.3f], %d errors",
            report.n,
            report.mean,
            report.ci_low,
            report.ci_high,
            report.n_errors,
        )
        return report

    def _one(
        self,
        index: int,
        example: Any,
        predict: Callable[[dict[str, Any]], Any],
        score_fn: Callable[[Any, Any], MetricResult],
        input_fields: Sequence[str],
        output_fields: Sequence[str],
    ) -> ExampleRecord:
        inputs = {f: v for f in input_fields if (v := get_field(example, f)) is not MISSING}
        gold = {f: v for f in output_fields if (v := get_field(example, f)) is not MISSING}
        base = {"index": index, "inputs": inputs, "gold": gold}
        try:
            output = predict(inputs)
        except BudgetExceeded:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {shorten(exc, 300)}"
            logger.debug("example %d failed: %s", index, error)
            return ExampleRecord(**base, score=0.0, raw_score=0.0, feedback=f"error: {error}", error=error)
        if isinstance(output, str) and len(output_fields) == 1:
            output_dict = {output_fields[0]: output}
        else:
            output_dict = record_items(output)
        try:
            result = score_fn(example, output)
        except (BudgetExceeded, MetricError):
            raise
        except (LMCallError, ModelUnavailableError) as exc:  # the judge model failed: a row error, like a prediction
            error = f"judge failed: {type(exc).__name__}: {shorten(exc, 300)}"
            return ExampleRecord(**base, output=output_dict, score=0.0, raw_score=0.0, feedback=error, error=error)
        except Exception as exc:  # a metric bug hits every row: say so once, not as a 0 score per row
            raise MetricError(
                f"the metric failed on example {index}: {type(exc).__name__}: {shorten(exc, 200)}",
                hint="fix the metric (set PROMPTOMATIX_DEBUG=1 for the traceback)",
            ) from exc
        return ExampleRecord(
            **base,
            output=output_dict,
            score=result.score,
            raw_score=result.raw_score if result.raw_score is not None else result.score,
            feedback=result.feedback,
            details=result.details,
            predicted=result.predicted,
            user_metric=result.user_metric,
        )

    def summarize(self, records: Sequence[ExampleRecord], label_field: str | None = None) -> EvalReport:
        """A report over records already scored (a subset, or several reports joined), without new calls."""
        return self._report(list(records), len(records), False, label_field)

    def _report(self, records: list[ExampleRecord], n_total: int, stopped: bool, label_field: str | None) -> EvalReport:
        scores = [r.score for r in records]
        n = len(records)
        ci_low, ci_high = bootstrap_ci(scores, self.n_bootstrap, self.seed)
        keys = sorted({k for r in records for k in r.details})
        report = EvalReport(
            mean=sum(scores) / n if n else 0.0,
            mean_raw=sum(r.raw_score for r in records) / n if n else 0.0,
            ci_low=ci_low,
            ci_high=ci_high,
            n=n,
            n_errors=sum(r.error is not None for r in records),
            n_skipped=n_total - n,
            stopped_early=stopped,
            details={k: sum(r.details.get(k, 0.0) for r in records) / n for k in keys},
            records=records,
            user_metric=any(r.user_metric for r in records),
        )
        if label_field is not None:
            golds, preds = [], []
            for r in records:
                if label_field not in r.gold:
                    continue
                golds.append(normalize_label(r.gold[label_field]))
                preds.append(self._predicted_label(r, label_field))
            for key, value in classification_stats(golds, preds).items():
                setattr(report, key, value)
            report.balanced_accuracy_ci = self._balanced_accuracy_ci(golds, preds, report.balanced_accuracy or 0.0)
        return report

    def _balanced_accuracy_ci(self, golds: list[str], preds: list[str], point: float) -> tuple[float, float]:
        """Percentile bootstrap stratified by gold label; deterministic for a seed. Each resample draws every
        label's rows from that label's rows, as many as it has, so every label keeps its support: a resample that
        lost the rare label would score a constant predictor 1.0. The CI is conditional on the label counts (a
        label with one row adds no spread). Vectorized (numpy): one (n_bootstrap, support) draw per label."""
        import numpy as np

        n = len(golds)
        if n < 2 or self.n_bootstrap <= 0:
            return point, point
        rng = np.random.default_rng(self.seed)
        hits = np.array([g == p for g, p in zip(golds, preds, strict=True)], dtype=float)
        by_label = np.array(golds)
        recalls = []
        for label in sorted(set(golds)):
            mine = hits[by_label == label]
            recalls.append(mine[rng.integers(0, len(mine), size=(self.n_bootstrap, len(mine)))].mean(axis=1))
        values = np.sort(np.mean(recalls, axis=0))
        lo = float(values[math.floor(0.025 * self.n_bootstrap)])
        hi = float(values[min(self.n_bootstrap - 1, math.ceil(0.975 * self.n_bootstrap) - 1)])
        return min(lo, point), max(hi, point)

    @staticmethod
    def _predicted_label(record: ExampleRecord, label_field: str) -> str:
        if record.error is not None:
            return ERROR_LABEL
        if record.predicted is not None:
            return record.predicted or INVALID_LABEL
        value = (record.output or {}).get(label_field)
        return normalize_label(value) if value is not None else INVALID_LABEL
