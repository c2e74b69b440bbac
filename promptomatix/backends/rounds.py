"""Concurrent scoring for the meta backend: the evaluations of a round (and of the confirmation) share one pool.

Why: scored one after another, a candidate's minibatch of 6 rows or fewer fills 4 threads for one wave and half
of the next, and each finalist of the confirmation waited for the one before. Here every evaluation that does not
depend on another runs at once, each in its own coordinating thread, on one pool of `num_threads` workers, so
the model sees up to `num_threads` calls at all times and never more. The decisions are taken afterwards, in the
candidates' order, from reports that do not depend on the scheduling: the same seed gives the same choice.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from promptomatix.backends.base import selection_score
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.selection import records_score, rows_without_demos, subset

T = TypeVar("T")
Job = Callable[[Executor], T]  # gets the shared row pool, passes it to ctx.evaluate(..., pool=...)


class Scored:
    """A candidate and its scores at each stage."""

    def __init__(self, cid: int, rnd: int, cand: PromptCandidate) -> None:
        self.id = cid
        self.round = rnd
        self.candidate = cand
        self.minibatch: float | None = None
        self.valid_raw: float | None = None
        self.valid_penalized: float | None = None
        self.valid_report: Any = None
        self.confirm: float | None = None  # train+valid score in the confirmation stage
        self.note = ""


@dataclass
class Outcomes(Generic[T]):
    """Each job's result or exception, in the jobs' order, and the failure that happened first."""

    results: list[T | None]
    errors: list[BaseException | None]
    first: BaseException | None = None

    def raise_first(self) -> None:
        if self.first is not None:
            raise self.first


@dataclass
class _First:
    lock: threading.Lock = field(default_factory=threading.Lock)
    error: BaseException | None = None

    def note(self, e: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = e


def run_concurrently(num_threads: int, jobs: Sequence[Job[T]]) -> Outcomes[T]:
    """Run the jobs at once on one row pool of `num_threads` workers; return when all have ended.

    After the first failure the queued rows of every job are dropped (a budget stop or a metric bug would hit
    them too) and the jobs still running are waited for, so no call is in flight when this returns. A Ctrl-C
    (KeyboardInterrupt, in this thread or a worker's) is re-raised at once without waiting for calls in flight."""
    if not jobs:
        return Outcomes([], [])
    rows = ThreadPoolExecutor(max_workers=max(1, num_threads), thread_name_prefix="promptomatix-eval")
    coord = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="promptomatix-job")
    first = _First()

    def guarded(job: Job[T]) -> T:
        try:
            return job(rows)
        except BaseException as e:
            first.note(e)
            rows.shutdown(wait=False, cancel_futures=True)  # queued rows of the other jobs go too
            raise

    futures: list[Future[T]] = []
    try:
        futures = [coord.submit(guarded, job) for job in jobs]
        wait(futures, return_when=FIRST_EXCEPTION)
        if isinstance(first.error, KeyboardInterrupt):
            raise first.error
        wait(futures)
    except KeyboardInterrupt:
        rows.shutdown(wait=False, cancel_futures=True)
        coord.shutdown(wait=False, cancel_futures=True)
        raise
    rows.shutdown(wait=True)
    coord.shutdown(wait=True)
    errors = [f.exception() for f in futures]
    results = [None if e is not None else f.result() for f, e in zip(futures, errors, strict=True)]
    return Outcomes(results, errors, first.error)


@dataclass
class Screening:
    """What a round's candidates are screened against: the best's scores on the round's minibatch."""

    minibatch: list[dict[str, Any]]
    best_keep: set[int]  # minibatch rows that are not the best's demos
    best_report: Any
    best_penalty: float


def screen_round(
    ctx: Any,
    scoring: list[Scored],
    screening: Screening,
    program: Callable[[PromptCandidate], Any],
    penalty: Callable[[PromptCandidate], float],
    score_valid: Callable[[Scored, Executor], None],
) -> list[Scored]:
    """Screen every candidate on the minibatch and score the promoted ones on valid, all at once; return the
    promoted ones in the candidates' order. A failure (e.g. the budget) is raised once all have ended."""
    label, mb = ctx.spec.label_field, screening.minibatch

    def screen(sc: Scored, rows: Executor) -> bool:
        cand = sc.candidate
        keep = rows_without_demos(ctx.spec, mb, cand.demos) & screening.best_keep  # no row scores its own demo
        if keep:
            report = ctx.evaluate(program(cand), [mb[i] for i in sorted(keep)], pool=rows, ci=False)
            sc.minibatch = selection_score(report) * penalty(cand)
            ref = records_score(subset(screening.best_report, keep), label) * screening.best_penalty
            if sc.minibatch + 1.0 / len(keep) < ref:
                sc.note = f"minibatch {sc.minibatch:.2f} < best {ref:.2f} on the same rows: not promoted"
                return False
        score_valid(sc, rows)
        return True

    out = run_concurrently(ctx.num_threads, [functools.partial(screen, sc) for sc in scoring])
    out.raise_first()
    return [sc for sc, promoted in zip(scoring, out.results, strict=True) if promoted]


def confirm_each(
    ctx: Any,
    finalists: list[Scored],
    base: Scored,
    train: list[dict[str, Any]],
    program: Callable[[PromptCandidate], Any],
    penalty: Callable[[PromptCandidate], float],
) -> Iterator[tuple[Scored, float, int]]:
    """Score the initial prompt and each finalist on the train rows that are neither its demos nor the initial
    prompt's, all at once, and yield (finalist, margin over the initial prompt on the same rows, rows compared)
    for the winners in the finalists' order. A failure (e.g. the budget) is raised after the finalists whose
    evaluation finished have been yielded; without the initial prompt's scores none is."""
    spec, label = ctx.spec, ctx.spec.label_field
    base_keep = rows_without_demos(spec, train, base.candidate.demos)
    keeps = [rows_without_demos(spec, train, f.candidate.demos) & base_keep for f in finalists]

    def scorer(cand: PromptCandidate, rows: list[dict[str, Any]]) -> Job[Any]:
        return lambda pool: ctx.evaluate(program(cand), rows, pool=pool, ci=False)

    jobs = [scorer(base.candidate, train)]
    jobs += [scorer(f.candidate, [train[i] for i in sorted(keep)]) for f, keep in zip(finalists, keeps, strict=True)]
    out = run_concurrently(ctx.num_threads, jobs)
    base_train = out.results[0]
    if base_train is None:
        out.raise_first()
    for f, keep, rep in zip(finalists, keeps, out.results[1:], strict=True):
        if rep is None:
            continue
        f.confirm = records_score([*f.valid_report.records, *rep.records], label) * penalty(f.candidate)
        ref = records_score([*base.valid_report.records, *subset(base_train, keep)], label)
        ref *= penalty(base.candidate)
        f.note = f"confirmation: {f.confirm:.3f} vs initial {ref:.3f} on valid + {len(keep)} train rows"
        if f.confirm - ref > 1e-9:
            yield f, f.confirm - ref, len(f.valid_report.records) + len(keep)
    out.raise_first()
