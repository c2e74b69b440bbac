"""`dspy.Evaluate` on one pool of worker threads kept for the whole optimization.

Why: stock Evaluate builds a ParallelExecutor, and with it a new thread pool, for every trial; its main thread then
starts the workers one by one (each start waits for the GIL while the others format prompts), re-installs a waiter
on every pending row after each one finishes and re-sums the scores for a progress bar that is not shown. Over a
MIPROv2 run that is a tenth of the engine's time, spent while the model could be answering.

`PooledEvaluate` returns what stock Evaluate returns for the same program and rows: the same (example,
prediction, score) triples in devset order, failed rows as `(dspy.Prediction(), failure_score)`, the same score
rounded to two places, and the same "Execution cancelled" error once `max_errors` rows have failed. Each row runs
in a copy of the caller's context (DSPy's settings, callbacks), as ParallelExecutor runs it. Not kept: DSPy's
resubmission of a row still running after 120 s (our boundary bounds every call in time), tables and CSV/JSON
export (MIPROv2 asks for neither).

With `replay=True` (the run's task model and judge answer greedily, so the boundary's cache would hand back the
same answers) a row already scored under the same instructions and demos is not run again: MIPROv2's search
often proposes a combination it has tried. A row that failed is always run again.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from typing import Any

import dspy
from dspy.dsp.utils.settings import thread_local_overrides
from dspy.evaluate.evaluate import EvaluationResult
from dspy.utils.callback import with_callbacks

log = logging.getLogger(__name__)

CANCELLED = "Execution cancelled due to errors or interruption."


class PooledEvaluate(dspy.Evaluate):
    """dspy.Evaluate whose rows run on `pool` (shared by every call) instead of a pool made per call."""

    def __init__(self, *, pool: Executor, replay: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool = pool
        self.replay = replay
        self._scored: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}  # key -> (prediction, score, demos kept)
        #: told `(program, score 0-1, rows)` after each evaluation on the whole devset (a stop keeps the best)
        self.on_full: Callable[[Any, float, int], None] | None = None

    @classmethod
    def like(cls, stock: dspy.Evaluate, pool: Executor, *, replay: bool = False) -> PooledEvaluate:
        """The same evaluation as `stock` (devset, metric, limits), run on `pool`."""
        made = cls(
            pool=pool,
            replay=replay,
            devset=stock.devset,
            metric=stock.metric,
            num_threads=stock.num_threads,
            display_progress=False,
            display_table=False,
            max_errors=stock.max_errors,
            provide_traceback=stock.provide_traceback,
            failure_score=stock.failure_score,
        )
        made.on_full = getattr(stock, "on_full", None)  # a FullEvalWatch's listener stays on
        return made

    @with_callbacks
    def __call__(  # type: ignore[override]
        self,
        program: Any,
        metric: Any = None,
        devset: list | None = None,
        callback_metadata: dict[str, Any] | None = None,
        **_display: Any,
    ) -> EvaluationResult:
        metric = metric if metric is not None else self.metric
        devset = devset if devset is not None else self.devset
        if not devset:
            raise ValueError("devset must contain at least one example, got an empty devset.")
        max_errors = self.max_errors if self.max_errors is not None else dspy.settings.max_errors
        cancel, lock, errors = threading.Event(), threading.Lock(), [0]

        program_key, demos = _program_key(program) if self.replay else (None, None)

        def item(example: Any) -> tuple[Any, Any] | None:
            if cancel.is_set():
                return None
            key = (program_key, id(example), id(metric))
            seen = self._scored.get(key) if self.replay else None
            if seen is not None:
                return seen[0], seen[1]
            overrides = dict(thread_local_overrides.get())
            if overrides.get("usage_tracker"):  # as ParallelExecutor: each row tracks its own usage
                overrides["usage_tracker"] = copy.deepcopy(overrides["usage_tracker"])
            thread_local_overrides.set(overrides)  # in this row's own copy of the context
            try:
                prediction = program(**example.inputs())
                score = metric(example, prediction)
                if self.replay:  # the example and demos are kept with the entry, so their ids stay theirs
                    self._scored[key] = (prediction, score, (example, demos))
                return prediction, score
            except Exception as e:
                with lock:
                    errors[0] += 1
                    if errors[0] >= max_errors:
                        cancel.set()
                log.error("Error for %s: %s", example, e, exc_info=bool(self.provide_traceback))
                return None

        futures: list[Future[tuple[Any, Any] | None]] = [
            self.pool.submit(contextvars.copy_context().run, item, ex) for ex in devset
        ]
        try:
            wait(futures)
        except KeyboardInterrupt:
            cancel.set()  # queued rows skip; calls in flight end on their own
            raise
        if cancel.is_set():
            raise Exception(CANCELLED)
        outcomes = [f.result() for f in futures]
        results = [
            (ex, *((dspy.Prediction(), self.failure_score) if r is None else r))
            for ex, r in zip(devset, outcomes, strict=True)
        ]
        ncorrect = sum(score for *_, score in results)
        if self.on_full is not None and len(devset) == len(self.devset):
            self.on_full(program, ncorrect / len(devset), len(devset))
        return EvaluationResult(score=round(100 * ncorrect / len(devset), 2), results=results)


class FullEvalWatch:
    """A MIPROv2 evaluate (stock or pooled) that tells `on_full` each score on the whole valid set, so a stop
    inside the search can keep the best trial (dspy_rescue.py). Everything else is the wrapped evaluate's."""

    def __init__(self, evaluate: Any, on_full: Callable[[Any, float, int], None]) -> None:
        self.evaluate = evaluate
        self.on_full = on_full

    def __call__(self, program: Any, **kwargs: Any) -> Any:
        result = self.evaluate(program, **kwargs)
        devset = kwargs.get("devset") or self.evaluate.devset
        if len(devset) == len(self.evaluate.devset):
            self.on_full(program, float(result.score) / 100.0, len(devset))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.evaluate, name)


def _program_key(program: Any) -> tuple[tuple[Any, ...], list[Any]]:
    """What a trial changes in a program: each predictor's instructions, fields and demos (by object: a demo is
    never edited once made); and the demos, to keep with the scores."""
    key, demos = [], []
    for name, predictor in program.named_predictors():
        sig = predictor.signature
        fields = tuple((n, f.annotation) for n, f in sig.fields.items())
        key.append((name, sig.instructions, fields, tuple(id(d) for d in predictor.demos)))
        demos.append(list(predictor.demos))
    return tuple(key), demos
