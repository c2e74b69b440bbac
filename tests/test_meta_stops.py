"""The meta backend when a run is cut short or ties: what it returns must be what the evidence supports
(bugs found by a hostile review, session 7; each test failed before its fix)."""

from __future__ import annotations

from dataclasses import dataclass

from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import StrategyRegistry
from promptomatix.errors import BudgetExceeded
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import confirm_ctx, make_ctx, rows

LUCKY = "Classify it, lucky."  # wins on valid by chance, loses on train (tests/test_meta_backend.lucky_task)
GOOD = "Read each review with care. Say negative if the text complains or criticizes, otherwise positive."


@dataclass
class Fixed:
    """A procedural strategy proposing fixed instructions (and optionally the first `n_demos` train rows)."""

    name: str
    text: str
    demos: list[dict[str, str]] | None = None
    uses_teacher: bool = False
    needs_failures: bool = False

    def propose(self, ctx):
        return ctx.best.model_copy(update={"instructions": self.text, "demos": self.demos or [], "origin": self.name})


def registry(*strategies: Fixed) -> StrategyRegistry:
    reg = StrategyRegistry.default()
    for s in strategies:
        reg.register(s)
    return reg


def test_a_budget_stop_in_the_confirmation_never_returns_a_finalist_that_lost_it(monkeypatch):
    """Finalist 1 is confirmed and loses; the budget runs out while finalist 2 is confirmed: the run must not fall
    back to finalist 1 "chosen on valid alone" (it was the lucky one the confirmation exists to reject)."""
    seen: list[str] = []

    def stop(ctx, finalists, base, train, program, penalty):
        seen.extend(f.candidate.instructions for f in finalists)
        finalists[0].confirm = 0.1  # scored on train and lost: confirm_each does not yield losers
        raise BudgetExceeded("time budget of 60 s spent")
        yield  # a generator, as confirm_each is

    monkeypatch.setattr(MetaPromptOptimizer, "_confirm_each", staticmethod(stop))
    reg = registry(Fixed("lucky", LUCKY), Fixed("good", GOOD))
    settings = MetaSettings(strategies=["lucky", "good"], rounds=1, candidates_per_round=2, minibatch_size=1)
    res = MetaPromptOptimizer(settings, reg).compile(
        confirm_ctx("unused"), PromptCandidate(instructions="Classify."), GuardedData(rows(12), rows(12, 100))
    )
    assert len(seen) == 2
    assert res.instructions == seen[1] != seen[0]
    assert "chosen on valid alone" in res.stop_reason


def test_a_budget_stop_after_every_finalist_lost_returns_the_initial_prompt(monkeypatch):
    def stop(ctx, finalists, base, train, program, penalty):
        for f in finalists:
            f.confirm = 0.1
        raise BudgetExceeded("time budget of 60 s spent")
        yield

    monkeypatch.setattr(MetaPromptOptimizer, "_confirm_each", staticmethod(stop))
    settings = MetaSettings(strategies=["lucky"], rounds=1, candidates_per_round=1, minibatch_size=1)
    res = MetaPromptOptimizer(settings, registry(Fixed("lucky", LUCKY))).compile(
        confirm_ctx("unused"), PromptCandidate(instructions="Classify."), GuardedData(rows(12), rows(12, 100))
    )
    assert res.instructions == "Classify."
    assert "no confirmed finalist beat the initial prompt" in res.stop_reason


def test_a_later_tie_with_less_to_read_is_returned_without_a_confirmation():
    """Round 1 finds GOOD with six demos, round 2 the same score with two: the pool ranks the shorter first,
    and so must the result (it used to keep round 1's best, since the best moved only on a strict gain)."""
    train = rows(12)
    reg = registry(Fixed("many", GOOD, train[:6]), Fixed("few", GOOD, train[:2]))
    settings = MetaSettings(strategies=["many", "few"], rounds=2, candidates_per_round=1, confirm_top_k=0, patience=5)
    ctx, *_ = make_ctx("{}")
    res = MetaPromptOptimizer(settings, reg).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(train, rows(8, 100))
    )
    scores = {c.n_demos: c.valid_raw for c in res.candidates if c.round}
    assert scores[6] == scores[2] == 1.0
    assert len(res.demos) == 2


def test_a_budget_stop_mid_round_keeps_the_candidates_already_scored_on_valid():
    """--max-usd / --max-minutes / a retry under --max-calls can stop a round midway: a candidate already scored
    on every valid row (1.0 against the initial 0.5) must be kept, not thrown away with the round."""
    import threading

    slow = "Classify the review as positive or negative, thinking it through."
    reg = registry(Fixed("good", GOOD), Fixed("slow", slow))
    settings = MetaSettings(strategies=["good", "slow"], rounds=1, candidates_per_round=2, minibatch_size=4,
                            confirm_top_k=0)  # fmt: skip
    ctx, *_ = make_ctx("{}")
    real, good_done = ctx.evaluate, threading.Event()

    def evaluate(predict, rows_, **kw):
        text = getattr(getattr(predict, "candidate", None), "instructions", None)
        on_valid = len(rows_) == 8 and all(int(r["review"].rsplit(" ", 1)[-1]) >= 100 for r in rows_)
        if text == slow and on_valid:
            good_done.wait(10)
            raise BudgetExceeded("budget of $0.30 spent")
        report = real(predict, rows_, **kw)
        if text == GOOD and on_valid:
            good_done.set()
        return report

    ctx.evaluate = evaluate
    res = MetaPromptOptimizer(settings, reg).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(8), rows(8, 100))
    )
    assert good_done.is_set()
    assert res.instructions == GOOD and res.valid_raw == 1.0
    assert res.stop_reason.startswith("budget")


def test_a_judge_scored_task_plans_two_calls_a_row_so_its_planned_round_runs():
    """Generation is scored by a judge: each row costs a task call and a judge call. The plan counted one, so with
    --max-calls 80 its promised round was refused after the baseline had spent calls (0 rounds)."""
    import json

    from promptomatix.backends.base import RunContext
    from promptomatix.backends.plan import plan_meta
    from promptomatix.lm.boundary import Budget, LMBoundary
    from promptomatix.lm.fake import FakeLM
    from promptomatix.metrics import MetricsManager
    from promptomatix.task.models import FieldSpec, TaskSpec
    from promptomatix.task.task_types import TaskType

    gen = TaskSpec(description="Write a one-line slogan for the product", task_type=TaskType.GENERATION,
                   input_fields=[FieldSpec(name="product")], output_fields=[FieldSpec(name="slogan")])  # fmt: skip
    task = FakeLM(default=lambda m: json.dumps({"slogan": "great " + m[-1]["content"]}), model="fake/task")
    teacher = FakeLM(default=json.dumps({"score": 4, "reason": "ok", "prompt": "Write a short catchy slogan."}),
                     model="fake/teacher")  # fmt: skip
    boundary = LMBoundary({"task": task, "teacher": teacher}, budget=Budget(max_calls=80))
    metrics = MetricsManager(output_fields=["slogan"], lambda_penalty=0.0, judge=boundary.role("judge"))
    assert metrics.calls_per_row("generation") == 2
    assert MetricsManager(output_fields=["label"], judge=boundary.role("judge")).calls_per_row("classification") == 1
    ctx = RunContext(boundary=boundary, metrics=metrics, spec=gen, num_threads=2, seed=1)
    train = [{"product": f"item {i}", "slogan": f"buy item {i}"} for i in range(10)]
    valid = [{"product": f"thing {i}", "slogan": f"buy thing {i}"} for i in range(6)]
    settings = MetaSettings.preset("quick")
    plan = plan_meta(settings, len(train), len(valid), 80, calls_per_row=2)
    assert plan.rounds >= 1 and plan.max_calls <= 80
    res = MetaPromptOptimizer(settings).compile(ctx, PromptCandidate(instructions="Write a slogan."),
                                                GuardedData(train, valid))  # fmt: skip
    assert res.rounds_completed >= plan.rounds
    assert boundary.usage().total.calls <= 80


def test_calls_no_round_could_use_go_to_the_confirmation(monkeypatch):
    """A fitted plan cuts the confirmation to its floor (8 rows) so that more rounds can run; when no further round
    fits, the calls left must widen the confirmation, not go unspent (37 of 89 did at a third of DSPy's calls)."""
    import json

    from promptomatix.backends.plan import plan_meta
    from promptomatix.backends.rounds import confirm_each
    from promptomatix.lm.boundary import Budget

    sizes: list[int] = []

    def spy(ctx, finalists, base, train, program, penalty):
        sizes.append(len(train))
        yield from confirm_each(ctx, finalists, base, train, program, penalty)

    monkeypatch.setattr(MetaPromptOptimizer, "_confirm_each", staticmethod(spy))
    good = json.dumps({"prompt": "Say negative if the text complains or criticizes, otherwise positive."})
    ctx, *_ = make_ctx(good, budget=Budget(max_calls=89))
    settings = MetaSettings(strategies=["rewrite_from_failures"], rounds=3, candidates_per_round=4)
    plan = plan_meta(settings, 24, 24, 89)
    assert plan.confirm_rows == 8 and plan.rounds == 1
    res = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions="Classify."), GuardedData(rows(24), rows(24, 100))
    )
    assert sizes and sizes[0] > plan.confirm_rows
    assert ctx.boundary.usage().total.calls <= 89
    assert "complains" in res.instructions
