"""Engine concurrency: a meta round's candidates and the confirmation's finalists share one pool (calls in flight
reach num_threads and never exceed it), evaluations can share a pool, and threading never changes the result."""

from __future__ import annotations

import faulthandler
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from promptomatix.backends.base import RunContext
from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.errors import BudgetExceeded
from promptomatix.lm.boundary import LMBoundary
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import Evaluator, MetricsManager
from promptomatix.metrics.evaluator import ExampleRecord
from tests.backend_fakes import GuardedData, InFlight
from tests.test_meta_backend import SPEC, rows


@pytest.fixture(autouse=True)
def _no_hang():
    """A deadlock in the thread pools ends the test process with the threads' tracebacks instead of hanging."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def task_answer(messages):
    """Right on every row whatever the prompt, so every candidate ties with the initial and is promoted."""
    return json.dumps({"label": "negative" if "awful" in messages[-1]["content"] else "positive"})


def teacher_answer(messages):
    """A distinct on-task rewrite per template (the meta-prompt's text decides it, not the call order)."""
    tag = sum(map(ord, messages[-1]["content"])) % 997
    return json.dumps({"prompt": f"Variant {tag}: say negative if the review complains, otherwise positive."})


def ctx_for(task, teacher, num_threads=4):
    boundary = LMBoundary({"task": task, "teacher": teacher})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=num_threads, seed=1)
    ctx.progress = lambda e: setattr(task, "stage", e.stage)  # stages: baseline, round, confirm
    return ctx


TEMPLATES = ["rewrite_from_failures", "rephrase", "compress", "add_format"]


def test_a_rounds_candidates_and_the_confirmation_run_at_once_up_to_num_threads():
    # every evaluation makes 2 calls (2 minibatch rows, 2 valid rows, 4 train rows in the confirmation of which
    # the round's minibatch has cached 2): scored one after another, no stage would have more than 2 in flight
    task = InFlight(default=task_answer, latency=0.05, model="fake/task")
    teacher = FakeLM(default=teacher_answer, model="fake/teacher")
    settings = MetaSettings(strategies=TEMPLATES, rounds=1, candidates_per_round=4, minibatch_size=2, top_k=3)
    res = MetaPromptOptimizer(settings).compile(
        ctx_for(task, teacher), PromptCandidate(instructions="Classify the review."), GuardedData(rows(4), rows(2, 50))
    )
    assert res.rounds_completed == 1
    assert sum(c.minibatch_score is not None for c in res.candidates) == 4  # all four were screened
    assert sum(c.confirm_score is not None for c in res.candidates) == 2  # two finalists confirmed
    assert task.peak["baseline"] == 2
    assert task.peak["round"] == 4  # 4 candidates x 2 rows on 4 threads
    assert task.peak["confirm"] == 4  # the initial prompt and 2 finalists, 2 rows each (6 calls) on 4 threads


def test_concurrent_scoring_never_exceeds_num_threads():
    task = InFlight(default=task_answer, latency=0.02, model="fake/task")
    teacher = FakeLM(default=teacher_answer, model="fake/teacher")
    settings = MetaSettings(strategies=TEMPLATES, rounds=1, candidates_per_round=4, minibatch_size=4, top_k=3)
    MetaPromptOptimizer(settings).compile(
        ctx_for(task, teacher, num_threads=3),
        PromptCandidate(instructions="Classify the review."),
        GuardedData(rows(4), rows(6, 50)),
    )
    assert max(task.peak.values()) == 3


class Timed(FakeLM):
    """Records when each call started and ended."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.spans: list[tuple[float, float]] = []

    def complete(self, messages, **kw):
        start = time.monotonic()
        try:
            return super().complete(messages, **kw)
        finally:
            self.spans.append((start, time.monotonic()))


def test_candidates_that_need_no_failures_are_scored_while_the_teacher_writes():
    task = Timed(default=task_answer, latency=0.01, model="fake/task")
    teacher = Timed(default=teacher_answer, latency=0.3, model="fake/teacher")
    settings = MetaSettings(
        strategies=["rewrite_from_failures", "add_demos", "drop_line", "format_line"], rounds=1, candidates_per_round=4
    )
    res = MetaPromptOptimizer(settings).compile(
        ctx_for(task, teacher),
        PromptCandidate(instructions="Classify the review.\nBe careful."),
        GuardedData(rows(8), rows(8, 50)),
    )
    assert [c.origin for c in res.candidates[1:]] == settings.strategies  # recorded in slot order all the same
    ((t0, t1),) = teacher.spans
    during = [s for s in task.spans if t0 < s[0] < t1]
    assert len(during) >= 6  # the demo, dropped-line and format candidates' rows, run while the teacher writes


def lucky_task(messages):
    """Quality depends on the prompt and the row, so candidates differ: 'complains' is right, demos help on even
    rows, a format line helps on rows divisible by 3, the rest answers 'positive'."""
    system, user = messages[0]["content"], messages[-1]["content"]
    n = int(user.rsplit(" ", 1)[-1])
    truth = "negative" if "awful" in user else "positive"
    right = "complains" in system or (len(messages) > 2 and n % 2 == 0) or ("exactly one of" in system and n % 3 == 0)
    return json.dumps({"label": truth if right else "positive"})


def seeded_run(num_threads, seed):
    task = FakeLM(default=lucky_task, latency=0.002, model="fake/task")
    teacher = FakeLM(default=teacher_answer, model="fake/teacher")
    ctx = ctx_for(task, teacher, num_threads)
    ctx.seed = seed
    settings = MetaSettings.preset("quick")
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify the review."), GuardedData(rows(12), rows(12, 100))
    )
    records = [(c.id, c.origin, c.instructions, c.n_demos, c.minibatch_score, c.valid_penalized, c.confirm_score,
                c.note) for c in res.candidates]  # fmt: skip
    return res.prompt, res.stop_reason, records, len(task.calls) + len(teacher.calls)


@pytest.mark.parametrize("seed", [0, 7])
def test_threading_does_not_change_the_search(seed):
    one = seeded_run(1, seed)
    four = seeded_run(4, seed)
    assert one[0] == four[0]  # the chosen prompt
    assert one[1] == four[1]  # why the search stopped
    assert one[2] == four[2]  # every candidate, its scores at each stage and its note
    assert one[3] == four[3]  # the calls made
    assert len(one[2]) > 5


# -- the evaluator on a shared pool ------------------------------------------------------------------------------

MM = MetricsManager(output_fields=["label"], lambda_penalty=0, label_set=["positive", "negative"])
SCORE = MM.scorer("classification", final=True)


def evaluate(predict, exs, pool=None, **kw):
    return Evaluator(**kw).run(predict, exs, SCORE, ["review"], ["label"], label_field="label", pool=pool)


def test_evaluations_on_a_shared_pool_match_their_own_runs_and_share_its_threads():
    now, peak, gate = [0], [0], threading.Lock()

    def predict(inputs):
        with gate:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.01)
        with gate:
            now[0] -= 1
        return {"label": "negative" if "awful" in inputs["review"] else "positive"}

    alone = [evaluate(predict, rows(5, k), num_threads=2) for k in range(3)]
    peak[0] = 0
    with ThreadPoolExecutor(max_workers=2) as pool, ThreadPoolExecutor(max_workers=3) as jobs:
        shared = list(jobs.map(lambda k: evaluate(predict, rows(5, k), pool=pool, num_threads=8), range(3)))
    assert peak[0] == 2  # the pool's workers, not 3 evaluations x num_threads
    for a, b in zip(alone, shared, strict=True):
        assert a.records == b.records and a.mean == b.mean and a.balanced_accuracy == b.balanced_accuracy


def test_a_failed_evaluation_leaves_a_shared_pool_to_the_others():
    def broke(inputs):
        raise BudgetExceeded("budget spent", limit="calls")

    def fine(inputs):
        time.sleep(0.005)
        return {"label": "positive"}

    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(BudgetExceeded):
            evaluate(broke, rows(6), pool=pool)
        report = evaluate(fine, rows(6), pool=pool)
    assert report.n == 6 and report.n_skipped == 0


def test_balanced_accuracy_ci_matches_a_plain_stratified_bootstrap():
    def reference(golds, preds, point, n_bootstrap, seed):  # per label, resample its rows (its support is kept)
        import math

        rng = random.Random(seed)
        hits = {c: [g == p for g, p in zip(golds, preds, strict=True) if g == c] for c in sorted(set(golds))}
        values = []
        for _ in range(n_bootstrap):
            recalls = [sum(rng.choices(h, k=len(h))) / len(h) for h in hits.values()]
            values.append(sum(recalls) / len(recalls))
        values.sort()
        lo = values[math.floor(0.025 * n_bootstrap)]
        hi = values[min(n_bootstrap - 1, math.ceil(0.975 * n_bootstrap) - 1)]
        return min(lo, point), max(hi, point)

    # numpy draws other resamples than random.choices: the same percentiles up to Monte Carlo error
    r = random.Random(3)
    for _ in range(30):
        n, k = r.randint(10, 60), r.randint(1, 5)
        golds = [f"l{r.randrange(k)}" for _ in range(n)]
        preds = [g if r.random() < 0.6 else r.choice(["l0", "<error>", "<invalid>"]) for g in golds]
        point = sum(g == p for g, p in zip(golds, preds, strict=True)) / n
        got = Evaluator(seed=1, n_bootstrap=4000)._balanced_accuracy_ci(golds, preds, point)
        ref = reference(golds, preds, point, 4000, 1)
        assert abs(got[0] - ref[0]) <= 0.04 and abs(got[1] - ref[1]) <= 0.04, (n, k, got, ref)
        assert got == Evaluator(seed=1, n_bootstrap=4000)._balanced_accuracy_ci(golds, preds, point)  # a seed


def test_a_search_evaluation_skips_the_bootstrap():
    task = FakeLM(default=task_answer, model="fake/task")
    ctx = ctx_for(task, FakeLM(default=teacher_answer, model="fake/teacher"))
    predict = lambda r: {"label": "positive"}  # noqa: E731
    quick = ctx.evaluate(predict, rows(8), ci=False)
    full = ctx.evaluate(predict, rows(8))
    assert quick.records == full.records and quick.balanced_accuracy == full.balanced_accuracy
    assert quick.primary_ci == (quick.primary, quick.primary) and (quick.ci_low, quick.ci_high) == (0.5, 0.5)
    assert full.ci_low < full.ci_high
    assert isinstance(full.records[0], ExampleRecord)


def test_a_cache_lookup_never_waits_for_another_threads_write(tmp_path):
    from promptomatix.lm.cache import ResponseCache

    ResponseCache(tmp_path / "c.sqlite").put("earlier", {"text": "from an earlier run"})
    cache = ResponseCache(tmp_path / "c.sqlite")  # a resumed run: the earlier run's answers are there
    cache.put("mine", {"text": "a"})
    got: dict[str, object] = {}

    def lookups():
        got["miss"] = cache.get("fresh request")
        got["hit"] = cache.get("mine")

    with cache._lock:  # another thread's put holds the database
        reader = threading.Thread(target=lookups)
        reader.start()
        reader.join(timeout=2.0)
        assert not reader.is_alive()  # the lookups did not queue behind the write
    assert got == {"miss": None, "hit": {"text": "a"}}
    assert cache.get("earlier") == {"text": "from an earlier run"}


def test_a_rounds_checkpoint_is_written_while_the_next_rounds_calls_are_in_flight():
    task = InFlight(default=task_answer, latency=0.05, model="fake/task")
    ctx = ctx_for(task, FakeLM(default=teacher_answer, model="fake/teacher"))
    saved: list[tuple[int, int]] = []

    def save(state):  # a session write takes a while: were the next round's calls running by its end?
        time.sleep(0.03)
        saved.append((state["round"], task.now))

    ctx.checkpoint = save
    settings = MetaSettings(strategies=["add_demos", "rewrite_from_failures"], rounds=3, patience=5)
    MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify the review."), GuardedData(rows(8), rows(8, 50))
    )
    assert [r for r, _ in saved] == [0, 1, 2, 3, 3]  # the baseline, each round, the confirmed choice
    assert all(in_flight > 0 for _, in_flight in saved[:3]), saved  # written while the next round's calls ran


@pytest.mark.parametrize("seconds", [0.1, 0.2, 0.3, 0.4])
def test_a_budget_stop_in_the_middle_of_a_round_ends_every_evaluation_waiting_on_the_pool(seconds):
    """The first evaluation to hit the budget skips the others' queued rows; none may wait forever for them."""
    from promptomatix.lm.boundary import Budget

    task = InFlight(default=task_answer, latency=0.02, model="fake/task")
    teacher = FakeLM(default=teacher_answer, latency=0.02, model="fake/teacher")
    boundary = LMBoundary({"task": task, "teacher": teacher}, budget=Budget(max_seconds=seconds))
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4, seed=1)
    settings = MetaSettings(strategies=["add_demos", "drop_line", *TEMPLATES], rounds=4, candidates_per_round=6)
    out: dict[str, object] = {}
    initial, data = (
        PromptCandidate(instructions="Classify the review.\nBe careful."),
        GuardedData(rows(12), rows(12, 50)),
    )

    def search() -> None:
        out["res"] = MetaPromptOptimizer(settings).compile(ctx, initial, data)

    run = threading.Thread(target=search, daemon=True)
    run.start()
    run.join(timeout=30)
    assert not run.is_alive(), "an evaluation waited forever on a row the pool had dropped"
    assert out["res"].stop_reason.startswith("budget")  # type: ignore[attr-defined]
    assert task.now == 0  # no call left in flight


def test_a_failed_job_skips_the_queued_rows_of_the_others_and_wakes_their_evaluations():
    from promptomatix.backends.rounds import JobGroup, RoundAborted

    group = JobGroup(1)  # one worker: the second job's later rows wait in the queue
    started = threading.Event()

    def slow(inputs):
        started.set()
        time.sleep(0.1)
        return {"label": "positive"}

    def waits_on_queued_rows():
        return evaluate(slow, rows(4), pool=group.rows)

    def fails():
        started.wait(5)  # the other job's first row is running, three are queued
        raise BudgetExceeded("budget spent", limit="calls")

    first_job = group.spawn(waits_on_queued_rows)
    group.spawn(fails)
    joined = threading.Thread(target=group.join, daemon=True)
    joined.start()
    joined.join(timeout=10)
    assert not joined.is_alive()  # the evaluation was woken, not left waiting on rows the pool dropped
    assert isinstance(group.first, BudgetExceeded)
    assert isinstance(first_job.exception(), RoundAborted)
