"""The LM boundary: exact accounting, budgets, retries, caching and the DSPy bridge, all with the fake LM."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from promptomatix.errors import BudgetExceeded, BudgetStop, LMCallError
from promptomatix.lm.boundary import Budget, LMBoundary, RetryPolicy
from promptomatix.lm.cache import ResponseCache
from promptomatix.lm.fake import FakeLM

MSG = [{"role": "user", "content": "one two three"}]


def test_usage_totals_are_exact_per_role():
    task = FakeLM(default="alpha beta", cost_per_call=0.01)
    teacher = FakeLM(default="gamma", cost_per_call=0.10)
    b = LMBoundary({"task": task, "teacher": teacher})
    for i in range(3):
        b.role("task").chat([{"role": "user", "content": f"q {i} x"}])
    b.role("teacher").chat(MSG)
    u = b.usage()
    assert u.by_role["task"].calls == 3
    assert u.by_role["task"].prompt_tokens == 9  # "q i x" = 3 words each
    assert u.by_role["task"].completion_tokens == 6
    assert u.by_role["teacher"].calls == 1
    assert u.by_role["judge"].calls == 0
    assert u.total.calls == 4
    assert u.total.cost_usd == pytest.approx(0.13)
    assert u.models["judge"] == teacher.model  # the judge defaults to the teacher


def test_budget_of_n_calls_stops_call_n_plus_one():
    b = LMBoundary({"task": FakeLM(default="x")}, budget=Budget(max_calls=3))
    for i in range(3):
        b.role("task").chat([{"role": "user", "content": str(i)}])
    with pytest.raises(BudgetExceeded) as e:
        b.role("task").chat([{"role": "user", "content": "4"}])
    assert e.value.limit == "calls"
    assert b.usage().total.calls == 3


def test_budget_is_not_overshot_by_parallel_threads():
    fake = FakeLM(default="x", latency=0.02)
    b = LMBoundary({"task": fake}, budget=Budget(max_calls=5))
    outcomes = []

    def one(i):
        try:
            b.role("task").chat([{"role": "user", "content": str(i)}])
            outcomes.append("ok")
        except BudgetExceeded:
            outcomes.append("budget")

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(one, range(20)))
    assert outcomes.count("ok") == 5
    assert len(fake.calls) == 5


def test_token_usd_and_time_budgets():
    b = LMBoundary({"task": FakeLM(default="a b c d e")}, budget=Budget(max_tokens=10))
    b.role("task").chat(MSG)  # 3 + 5 = 8 tokens
    b.role("task").chat([{"role": "user", "content": "z"}])  # still under at check time
    with pytest.raises(BudgetExceeded):
        b.role("task").chat([{"role": "user", "content": "y"}])
    b2 = LMBoundary({"task": FakeLM(default="a", cost_per_call=0.5)}, budget=Budget(max_usd=1.0))
    b2.role("task").chat([{"role": "user", "content": "1"}])
    b2.role("task").chat([{"role": "user", "content": "2"}])
    with pytest.raises(BudgetExceeded):
        b2.role("task").chat([{"role": "user", "content": "3"}])
    b3 = LMBoundary({"task": FakeLM(default="a")}, budget=Budget(max_seconds=0.05))
    time.sleep(0.06)
    with pytest.raises(BudgetExceeded):
        b3.role("task").chat(MSG)


def test_transient_errors_are_retried_with_backoff():
    fake = FakeLM(default="fine", fail_times=2)
    b = LMBoundary({"task": fake}, retry=RetryPolicy(max_retries=3, backoff_base=0.0))
    assert b.role("task").chat(MSG) == "fine"
    u = b.usage().by_role["task"]
    assert u.retries == 2 and u.calls == 1 and u.failed_calls == 0


def test_retries_give_up_and_raise_typed_error():
    fake = FakeLM(default="fine", fail_times=5)
    b = LMBoundary({"task": fake}, retry=RetryPolicy(max_retries=1, backoff_base=0.0))
    with pytest.raises(LMCallError):
        b.role("task").chat(MSG)
    assert b.usage().by_role["task"].failed_calls == 1


def test_cache_replays_identical_requests_for_free(tmp_path):
    fake = FakeLM(default="answer", cost_per_call=1.0)
    path = tmp_path / "cache.sqlite"
    b = LMBoundary({"task": fake}, cache=ResponseCache(path))
    b.role("task").chat(MSG)
    b.role("task").chat(MSG)
    assert len(fake.calls) == 1
    assert b.usage().by_role["task"].cached_calls == 1
    # A new run over the same cache file (resume) pays nothing, even with a budget of zero calls.
    fresh = FakeLM(default="other")
    b2 = LMBoundary({"task": fresh}, cache=ResponseCache(path), budget=Budget(max_calls=0))
    assert b2.role("task").chat(MSG) == "answer"
    assert fresh.calls == []


def test_sampled_requests_replay_in_order_but_differ_within_a_run(tmp_path):
    answers = iter(["s1", "s2", "s3"])
    fake = FakeLM(default=lambda m: next(answers))
    path = tmp_path / "c.sqlite"
    b = LMBoundary({"task": fake}, cache=ResponseCache(path))
    first = [b.role("task").chat(MSG, temperature=0.7) for _ in range(2)]
    assert first == ["s1", "s2"]
    b2 = LMBoundary({"task": FakeLM(default="new")}, cache=ResponseCache(path))
    assert [b2.role("task").chat(MSG, temperature=0.7) for _ in range(3)] == ["s1", "s2", "new"]


def test_cache_can_be_bypassed():
    fake = FakeLM(default="a")
    b = LMBoundary({"task": fake})
    b.role("task").chat(MSG, cache=False)
    b.role("task").chat(MSG, cache=False)
    assert len(fake.calls) == 2


def test_concurrent_calls_overlap():
    fake = FakeLM(default="x", latency=0.1)
    b = LMBoundary({"task": fake})
    start = time.monotonic()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: b.role("task").chat([{"role": "user", "content": str(i)}]), range(8)))
    assert time.monotonic() - start < 0.5  # 8 × 0.1 s sequentially


def test_on_call_callback_sees_running_totals():
    seen = []
    lock = threading.Lock()

    def cb(report):
        with lock:
            seen.append(report.total.calls)

    b = LMBoundary({"task": FakeLM(default="x")}, on_call=cb)
    for i in range(3):
        b.role("task").chat([{"role": "user", "content": str(i)}])
    assert seen == [1, 2, 3]


def test_dspy_calls_go_through_the_boundary_with_json_schema():
    from typing import Literal

    import dspy

    from promptomatix.lm.dspy_engine import make_dspy_lm

    fake = FakeLM(default=json.dumps({"sentiment": "negative"}))
    b = LMBoundary({"task": fake}, budget=Budget(max_calls=1))

    class Sentiment(dspy.Signature):
        """Classify the sentiment."""

        text: str = dspy.InputField()
        sentiment: Literal["positive", "negative"] = dspy.OutputField()

    with dspy.context(lm=make_dspy_lm(b.role("task")), adapter=dspy.JSONAdapter()):
        pred = dspy.Predict(Sentiment)(text="awful")
        assert pred.sentiment == "negative"
        schema = fake.calls[0]["json_schema"]
        assert schema["properties"]["sentiment"]["enum"] == ["positive", "negative"]
        assert b.usage().total.calls == 1
        # DSPy turns every Exception into a failure; the budget must stop it, so it travels as BudgetStop.
        with pytest.raises(BudgetStop) as stop:
            dspy.Predict(Sentiment)(text="something else entirely")
        assert isinstance(stop.value.exceeded, BudgetExceeded)


def test_set_budget_releases_a_spent_budget():
    b = LMBoundary({"task": FakeLM(default="x")}, budget=Budget(max_calls=1))
    b.role("task").chat([{"role": "user", "content": "1"}])
    with pytest.raises(BudgetExceeded):
        b.role("task").chat([{"role": "user", "content": "2"}])
    b.set_budget(Budget(max_calls=3))
    assert b.role("task").chat([{"role": "user", "content": "2"}]) == "x"
    assert b.remaining_calls() == 1


def test_interrupted_call_releases_its_reserved_slot():
    def boom(messages):
        raise KeyboardInterrupt

    b = LMBoundary({"task": FakeLM(default=boom)}, budget=Budget(max_calls=5))
    with pytest.raises(KeyboardInterrupt):
        b.role("task").chat(MSG)
    assert b.remaining_calls() == 4  # the interrupted call counts as made, and nothing stays reserved
