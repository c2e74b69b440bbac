"""Concurrent scoring for the meta backend: the evaluations of a round (and of the confirmation) share one pool.

Why: scored one after another, a candidate's minibatch of 6 rows or fewer fills 4 threads for one wave and half
of the next, and each finalist of the confirmation waited for the one before. Here every evaluation that does not
depend on another runs at once, each in its own coordinating thread, on one pool of `num_threads` workers, so
the model sees up to `num_threads` calls at all times and never more. The decisions are taken afterwards, in the
candidates' order, from reports that do not depend on the scheduling: the same seed gives the same choice.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from promptomatix.backends.base import selection_score
from promptomatix.backends.guards import rejection
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.selection import EVIDENCE_P, evidence, records_score, rows_without_demos, subset

T = TypeVar("T")
S = TypeVar("S")


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
        self.confirm_raw_gain: float | None = None  # its raw gain there over the initial prompt, same rows
        self.note = ""


Proposal = tuple[str, PromptCandidate | None, str]  # (strategy, candidate or None, why there is none)


class RoundAborted(Exception):
    """A queued row of a job group that failed (or was interrupted): skipped without calling the model."""


class RowPool(ThreadPoolExecutor):
    """The shared row pool. Aborting makes its queued rows fail at once instead of calling the model; they are
    never cancelled from outside, because an evaluation waiting on a future that the pool cancelled while
    draining its queue is never woken (concurrent.futures notifies waiters only when a worker dequeues it)."""

    def __init__(self, num_threads: int) -> None:
        super().__init__(max_workers=max(1, num_threads), thread_name_prefix="promptomatix-eval")
        self.aborted = threading.Event()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        def row() -> T:
            if self.aborted.is_set():
                raise RoundAborted("skipped: another evaluation of the round failed")
            return fn(*args, **kwargs)

        return super().submit(row)


def beside(pool: RowPool, side: Callable[[], S], main: Callable[[], T]) -> tuple[T, S]:
    """`main()` in this thread while `side()` runs in a thread of its own, both sending their rows to `pool`; both
    results. A failure of either, or a Ctrl-C, skips the pool's queued rows and is raised without waiting for
    calls in flight."""
    runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="promptomatix-beside")
    try:
        later = runner.submit(contextvars.copy_context().run, side)
        first = main()
        return first, later.result()
    except BaseException:
        pool.aborted.set()
        raise
    finally:
        runner.shutdown(wait=False)


class JobGroup:
    """Jobs that run at once, each in a thread of its own, sharing `rows`, one pool of `num_threads` workers for
    their model calls (so together they never have more in flight); a job may start more jobs.

    After the first failure the queued rows of every job are skipped (a budget stop or a metric bug would hit
    them too). A Ctrl-C (KeyboardInterrupt, in the joining thread or a worker's) is re-raised at once by `join`
    without waiting for calls in flight."""

    def __init__(self, num_threads: int, rows: RowPool | None = None) -> None:
        self._own_rows = rows is None  # a pool lent by the caller is neither aborted on a failure nor shut down
        self.rows = RowPool(num_threads) if rows is None else rows
        self._jobs = ThreadPoolExecutor(max_workers=64, thread_name_prefix="promptomatix-job")
        self._futures: list[Future[Any]] = []
        self._lock = threading.Lock()
        self.first: BaseException | None = None

    def spawn(self, job: Callable[[], T]) -> Future[T]:
        with self._lock:
            fut = self._jobs.submit(self._guarded, job)
            self._futures.append(fut)
        return fut

    def _guarded(self, job: Callable[[], T]) -> T:
        try:
            return job()
        except BaseException as e:
            with self._lock:
                self.first = self.first or e
            if self._own_rows:
                self.rows.aborted.set()
            raise

    def abandon(self) -> None:
        """Skip every queued row and return without waiting for calls in flight (Ctrl-C, or a bug while
        starting); the jobs then end on their own as their rows fail."""
        self.rows.aborted.set()
        self.rows.shutdown(wait=False)
        self._jobs.shutdown(wait=False)

    def join(self) -> BaseException | None:
        """Wait until every job (those started meanwhile too) has ended; the failure that came first, if any."""
        try:
            while True:
                with self._lock:
                    pending = [f for f in self._futures if not f.done()]
                if not pending:
                    break
                wait(pending, return_when=FIRST_EXCEPTION)
                if isinstance(self.first, KeyboardInterrupt):
                    raise self.first
        except KeyboardInterrupt:
            self.abandon()
            raise
        if self._own_rows:
            self.rows.shutdown(wait=True)
        self._jobs.shutdown(wait=True)
        return self.first


@dataclass
class Round:
    """One round of the search: the best so far, its minibatch, and how candidates are proposed and scored."""

    number: int
    minibatch: list[dict[str, Any]]
    best: Scored
    base: Scored
    early: list[int]  # slots whose strategy does not read the best's failures: proposed and scored at once
    late: list[int]  # slots that wait for the best's minibatch failures (the teacher's rewrites)
    propose: Callable[[list[int], list[dict[str, Any]] | None], dict[int, Proposal]]  # slots, failures
    failures: Callable[[Any], list[dict[str, Any]]]
    program: Callable[[PromptCandidate], Any]
    penalty: Callable[[PromptCandidate], float]
    score_valid: Callable[[Scored, Executor], None]
    meanwhile: Callable[[], None] = lambda: None  # run once the round's first calls are in flight
    promote_at_least: int = 0  # the round's best screened candidates promoted even if they fail their screening


def play_round(ctx: Any, r: Round, seen: set[str], tried: list[Scored]) -> tuple[list[Scored], BaseException | None]:
    """Propose and score a round's candidates; return the promoted ones (scored on valid) in slot order, and what
    stopped the round (a budget) if anything did: candidates fully scored on valid before it are still promoted.

    The best's minibatch, the candidates that need no failures (demos, format line, dropped line, joins) and
    then the teacher's rewrites all share one pool, so the threads are busy while the teacher writes. Candidates
    are recorded in `tried` (and their keys in `seen`) in slot order, as if proposed and scored one by one: a
    candidate scored early that turns out to repeat an earlier slot is recorded as the duplicate it is."""
    spec = ctx.spec
    best_keep = rows_without_demos(spec, r.minibatch, r.best.candidate.demos)  # its own demos score itself
    group = JobGroup(ctx.num_threads)
    if r.promote_at_least < len(r.early) + len(r.late) or r.late:  # read by a screening or the teacher's slots
        best_report = group.spawn(lambda: ctx.evaluate(r.program(r.best.candidate), r.minibatch, pool=group.rows,
                                                       ci=False))  # fmt: skip
    else:  # every candidate is promoted unscreened and no slot reads failures: the best's minibatch buys nothing
        best_report = Future()
        best_report.set_result(None)
    proposals: dict[int, Proposal] = {}
    launched: dict[int, tuple[Scored, Future[bool]]] = {}

    def claims(i: int) -> str | None:
        """The key slot `i` takes when recorded in slot order: none if it has no candidate or is rejected."""
        cand = proposals[i][1]
        return None if cand is None or rejection(cand, spec, r.base.candidate) else cand.key()

    def launch(slots: list[int]) -> None:
        for i in sorted(slots):
            key = claims(i)
            if key is None or key in seen or key in {claims(j) for j in proposals if j < i}:
                continue
            sc = Scored(-1, r.number, proposals[i][1])  # type: ignore[arg-type]  # claims() saw a candidate
            launched[i] = (sc, group.spawn(functools.partial(_screen, ctx, r, sc, best_keep, best_report, group.rows)))

    def teacher_slots() -> None:
        proposals.update(r.propose(r.late, r.failures(best_report.result())))
        launch(r.late)

    try:
        r.meanwhile()
        proposals.update(r.propose(r.early, None))
        launch(r.early)
        if r.late:
            group.spawn(teacher_slots)
    except BaseException:
        group.abandon()
        raise
    try:
        failed = group.join()
    except KeyboardInterrupt as e:  # what the round fully scored before it is kept, and its checkpoint
        return _record(spec, r, proposals, launched, seen, tried), e
    promoted = _record(spec, r, proposals, launched, seen, tried)
    if failed is None and len(promoted) < r.promote_at_least:
        try:
            promoted, failed = _fill(ctx, r, [sc for sc, _ in launched.values()], promoted)
        except KeyboardInterrupt as e:  # the round's candidates scored before it are kept, and its checkpoint
            return promoted, e
    return promoted, failed


def _fill(ctx: Any, r: Round, screened: list[Scored], promoted: list[Scored]) -> tuple[list[Scored], Any]:
    """Promote the best of the candidates that failed their screening until the round has `promote_at_least`:
    a minibatch of a few rows is noisy, and a round that promotes a fixed number spends the calls the dry run
    said (a run whose candidates failed their screening spent half of it). Returns them in slot order."""
    out = sorted((sc for sc in screened if sc.id >= 0 and sc.minibatch is not None and sc not in promoted),
                 key=lambda sc: (-(sc.minibatch or 0.0), sc.id))[: r.promote_at_least - len(promoted)]  # fmt: skip
    group = JobGroup(ctx.num_threads)
    for sc in out:
        group.spawn(functools.partial(r.score_valid, sc, group.rows))
    failed = group.join()
    done = [sc for sc in out if sc.valid_report is not None]
    for sc in done:  # a candidate the budget stopped before its valid score stays "not promoted"
        sc.note = sc.note.replace(": not promoted", f": promoted to fill the round ({r.promote_at_least} a round)")
    return sorted([*promoted, *done], key=lambda sc: sc.id), failed


def _record(
    spec: Any,
    r: Round,
    proposals: dict[int, Proposal],
    launched: dict[int, tuple[Scored, Future[bool]]],
    seen: set[str],
    tried: list[Scored],
) -> list[Scored]:
    """Record the round's candidates in slot order, as if proposed and scored one by one; the promoted ones."""
    promoted = []
    for i in range(len(r.early) + len(r.late)):
        if i not in proposals:
            continue  # a teacher's slot that never came (the round failed): later slots are still recorded
        origin, cand, err = proposals[i]
        sc = Scored(len(tried), r.number, cand or r.best.candidate.model_copy(update={"origin": origin}))
        if cand is None:
            sc.note = err or "teacher answer unusable"
        elif why := rejection(cand, spec, r.base.candidate):
            sc.note = f"rejected before scoring: {why}"
        elif cand.key() in seen:
            sc.note = "duplicate of an earlier candidate"
        else:
            seen.add(cand.key())
            if i in launched:  # always, unless the round failed first
                sc, fut = launched[i]
                sc.id = len(tried)
                sc.note = "; ".join(filter(None, [err, sc.note]))  # a filled slot says whose it was
                if fut.done() and not fut.cancelled() and fut.exception() is None and fut.result():
                    promoted.append(sc)  # scored on every valid row, even if the round stopped later
        tried.append(sc)
    return promoted


def _screen(ctx: Any, r: Round, sc: Scored, best_keep: set[int], best: Future[Any], rows: Executor) -> bool:
    """Minibatch first (on the rows that are neither its demos nor the best's); promoted ones get valid. A round
    that promotes every candidate (`promote_at_least`) scores them on valid without a screening."""
    cand, mb = sc.candidate, r.minibatch
    keep = rows_without_demos(ctx.spec, mb, cand.demos) & best_keep
    if keep and r.promote_at_least < len(r.early) + len(r.late):  # when every one is promoted, none is screened
        report = ctx.evaluate(r.program(cand), [mb[i] for i in sorted(keep)], pool=rows, ci=False)
        sc.minibatch = selection_score(report) * r.penalty(cand)
        ref = records_score(subset(best.result(), keep), ctx.spec.label_field) * r.penalty(r.best.candidate)
        if sc.minibatch + 1.0 / len(keep) < ref:
            sc.note = f"minibatch {sc.minibatch:.2f} < best {ref:.2f} on the same rows: not promoted"
            return False
    r.score_valid(sc, rows)
    return True


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

    def scorer(cand: PromptCandidate, rows: list[dict[str, Any]], pool: Executor) -> Callable[[], Any]:
        return lambda: ctx.evaluate(program(cand), rows, pool=pool, ci=False)

    group = JobGroup(ctx.num_threads)
    jobs = [group.spawn(scorer(base.candidate, train, group.rows))]
    jobs += [
        group.spawn(scorer(f.candidate, [train[i] for i in sorted(k)], group.rows))
        for f, k in zip(finalists, keeps, strict=True)
    ]
    failed = group.join()
    reports = [None if j.exception() else j.result() for j in jobs]
    base_train = reports[0]
    if base_train is None:
        raise failed or RuntimeError("the initial prompt was not scored")
    base_valid = {r.index: r.raw_score for r in base.valid_report.records}
    base_rows = {r.index: r.raw_score for r in base_train.records}
    for f, keep, rep in zip(finalists, keeps, reports[1:], strict=True):
        if rep is None:
            continue
        raw = records_score([*f.valid_report.records, *rep.records], label)
        ref_raw = records_score([*base.valid_report.records, *subset(base_train, keep)], label)
        f.confirm, ref = raw * penalty(f.candidate), ref_raw * penalty(base.candidate)
        f.confirm_raw_gain = raw - ref_raw
        order = sorted(keep)  # rep scored train[order[j]] as its row j
        paired = evidence(
            [(r.raw_score, base_valid.get(r.index)) for r in f.valid_report.records]
            + [(r.raw_score, base_rows.get(order[r.index])) for r in rep.records]
        )
        f.note = f"confirmation: {f.confirm:.3f} vs initial {ref:.3f} on valid + {len(keep)} train rows; {paired}"
        more = f.candidate.words_read(spec) - base.candidate.words_read(spec)
        if f.confirm - ref > 1e-9 and not paired.enough:
            f.note += f": not kept, too few rows for a gain (needs p <= {EVIDENCE_P} or no row worse)"
        elif f.confirm - ref > 1e-9 and f.confirm_raw_gain <= 1e-9 and more > 0:
            f.note += f": not kept, no raw gain and {more} more words to read (demos included)"
        elif f.confirm - ref > 1e-9:
            yield f, f.confirm - ref, len(f.valid_report.records) + len(keep)
    if failed is not None:
        raise failed


def confirmed_reason(chosen: Scored, margin: float, rows: int) -> str:
    """The stop reason of a confirmed finalist, raw quality apart from the length penalty: a shorter prompt at
    equal quality also wins the penalized margin, and must not read as a quality gain."""
    raw = chosen.confirm_raw_gain or 0.0
    head = f"confirmation on {rows} valid and train rows: candidate {chosen.id}"  # not the valid score alone
    if raw > 1e-9:
        return f"{head} beat the initial prompt by {raw:.3f} raw ({margin:.3f} with the length penalty)"
    if raw < -1e-9:
        return f"{head} kept for its length: {-raw:.3f} lower raw quality, {margin:.3f} higher with the length penalty"
    return f"{head} kept for its length at equal raw quality ({margin:.3f} higher with the length penalty only)"
