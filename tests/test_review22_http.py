"""Review 22: the API-key path (litellm model strings with an api_base) against a scripted OpenAI-compatible server.

Servers are the packaged FaultServer on 127.0.0.1 (scripted answers changed per test), stopped when each block
ends; every slow or hanging answer is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Any

import pytest

from promptomatix.errors import BudgetExceeded, LMCallError, ModelUnavailableError
from promptomatix.lm import cache as cache_module
from promptomatix.lm.boundary import Budget, LMBoundary, RetryPolicy
from promptomatix.lm.cache import ResponseCache
from promptomatix.lm.factory import create_client
from promptomatix.lm.types import Completion
from promptomatix.sessions import secrets
from promptomatix.sessions.secrets import scrub, urls_with_credentials
from promptomatix.testing.fault_server import FaultServer

HEX_KEY = "7f3c9a1b2e4d5f60718293a4b5c6d7e8"  # Azure-style: no built-in key pattern matches it


class Scripted(FaultServer):
    """A FaultServer whose good answers are edited by `edit(answer, n)` (n: the request's number), and that can
    trickle its answer a byte at a time (`trickle` seconds between bytes) after `warm` good requests."""

    def __init__(self, mode: Any = "ok", *, edit: Any = None, trickle: float = 0.0, warm: int = 0, **kw: Any):
        super().__init__(mode, **kw)
        self.edit = edit
        self.trickle = trickle
        self.warm = warm
        self.paths: list[str] = []

    def completion(self, body: dict[str, Any], mode: str = "ok") -> dict[str, Any]:
        answer = super().completion(body, mode)
        return self.edit(answer, self.requests - 1) if self.edit else answer

    def _handler(self) -> Any:
        base, server = super()._handler(), self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                server.paths.append(self.path)
                if server.trickle and len(server.paths) > server.warm:
                    return self._trickle()
                return super().do_POST()

            def _trickle(self) -> None:
                import json

                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server._count(body)
                data = json.dumps(server.completion(body)).encode()
                data = data + b" " * max(0, 80 - len(data))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                for i in range(len(data)):  # bounded: at most len(data) * trickle seconds
                    if server._stop.wait(server.trickle):
                        return
                    try:
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return

        return Handler


def no_usage(answer: dict[str, Any], n: int) -> dict[str, Any]:
    answer.pop("usage", None)
    return answer


def usage(**counts: Any) -> Any:
    def edit(answer: dict[str, Any], n: int) -> dict[str, Any]:
        answer["usage"] = counts
        return answer

    return edit


def boundary(url: str, *, model: str = "openai/my-model", key: str | None = "sk-test-not-a-real-key-1234",
             timeout: float = 20.0, retries: int = 0, **kw: Any) -> LMBoundary:  # fmt: skip
    client = create_client(model, api_base=url, api_key=key, request_timeout=timeout)
    return LMBoundary({"task": client}, retry=RetryPolicy(max_retries=retries, backoff_base=0.05), **kw)


def ask(b: LMBoundary, text: str = "Is this review positive? " * 10, **kw: Any) -> Completion:
    return b.complete("task", [{"role": "user", "content": text}], **kw)


@pytest.fixture(autouse=True)
def _forget_keys():
    forget = getattr(secrets, "forget_secrets", lambda: None)  # (getattr: the file also runs on older code)
    forget()
    yield
    forget()


# -- F1: no usage in the answer ----------------------------------------------------------------------------------


def test_an_answer_without_usage_is_counted_by_estimate_and_marked_so():
    with Scripted(answer="positive", edit=no_usage) as s:
        b = boundary(s.base_url)
        c = ask(b)
    assert c.estimated and c.prompt_tokens > 10 and c.completion_tokens >= 1
    u = b.usage().total
    assert u.tokens == c.prompt_tokens + c.completion_tokens and u.estimated_calls == 1


def test_max_total_tokens_binds_when_the_server_sends_no_usage():
    with Scripted(answer="positive " * 20, edit=no_usage) as s:
        b = boundary(s.base_url, budget=Budget(max_tokens=3000))
        with pytest.raises(BudgetExceeded):
            for i in range(60):  # bounded: an honest count stops this after a few calls
                ask(b, f"review {i}: " + "the plot was fine and the acting was good. " * 10)
    assert s.requests < 30
    assert 0 < b.usage().total.tokens <= 3000


def test_max_usd_binds_and_cost_is_priced_when_the_server_sends_no_usage():
    with Scripted(answer="positive " * 20, edit=no_usage) as s:
        b = boundary(s.base_url, model="openai/gpt-4o-mini", budget=Budget(max_usd=0.0005))
        with pytest.raises(BudgetExceeded):
            for i in range(200):
                ask(b, f"review {i}: " + "the plot was fine and the acting was good. " * 20)
    assert 0 < b.usage().total.cost_usd <= 0.0005
    assert s.requests < 150


# -- F6 and F12: counts that cannot be right ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts",
    [
        {"prompt_tokens": -100000, "completion_tokens": -5, "total_tokens": -100005},
        {"prompt_tokens": 2e15, "completion_tokens": 5, "total_tokens": 2e15},
        {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    ],
)
def test_impossible_counts_are_replaced_by_an_estimate(counts):
    with Scripted(answer="positive", edit=usage(**counts)) as s:
        b = boundary(s.base_url)
        c = ask(b)
    assert c.estimated and 0 < c.prompt_tokens < 1000 and c.completion_tokens >= 0
    assert 0 < b.usage().total.tokens < 1000


def test_a_usage_count_of_the_wrong_type_is_an_unreadable_answer_not_a_retried_http_500():
    with Scripted(answer="positive", edit=usage(prompt_tokens="abc", completion_tokens=5, total_tokens=15)) as s:
        b = boundary(s.base_url, retries=2)
        with pytest.raises(LMCallError) as e:
            ask(b)
    assert "HTTP 500" not in str(e.value) and "unreadable response" in str(e.value)
    assert s.requests == 1


# -- F2 and F3: time ---------------------------------------------------------------------------------------------


def test_request_timeout_bounds_the_whole_request_against_a_trickling_server():
    with Scripted(answer="positive", trickle=0.15, warm=1) as s:
        b = boundary(s.base_url, timeout=1.5)
        ask(b, "warm up")  # the client's first request may take longer (it loads the provider SDK)
        start = time.monotonic()
        with pytest.raises(LMCallError, match=r"within 1\.5 s"):
            ask(b, "now trickle")
        assert time.monotonic() - start < 4


def test_a_request_near_the_end_of_the_time_budget_gets_only_the_time_left():
    with FaultServer("hang", delay=20) as s:
        b = boundary(s.base_url, timeout=60, budget=Budget(max_seconds=3))
        start = time.monotonic()
        with pytest.raises((LMCallError, BudgetExceeded)) as e:
            ask(b)
        elapsed = time.monotonic() - start
        with pytest.raises(BudgetExceeded) as spent:
            ask(b, "the next call")
    assert elapsed < 8
    assert "raise" not in str(e.value) and "left of the time budget" in str(e.value)
    assert "raise" not in str(spent.value) and "is answering" in str(spent.value)  # not "(raise --max-minutes)"


# -- F4: the key -------------------------------------------------------------------------------------------------


def test_a_key_that_is_also_a_path_segment_of_the_api_base_is_scrubbed_everywhere(caplog):
    with Scripted("500", message=f"no route /k/{HEX_KEY}/v1") as s:
        url = f"http://127.0.0.1:{s.port}/k/{HEX_KEY}/v1"
        b = boundary(url, key=HEX_KEY, retries=1)
        with caplog.at_level(logging.WARNING), pytest.raises(LMCallError) as e:
            ask(b)
    assert s.requests == 2 and "retry 1" in caplog.text
    assert HEX_KEY not in caplog.text and HEX_KEY not in str(e.value)
    assert HEX_KEY not in b.clients["task"].where
    stored = scrub({"run_config": {"api_base": url}, "task_spec": {"assumptions": [f"model at {url}"]}})
    assert HEX_KEY not in str(stored)
    assert urls_with_credentials({"api_base": url}) == ["api_base"]  # a resume asks for --api-base again


def test_a_key_from_the_provider_env_var_echoed_in_a_5xx_is_scrubbed_in_warnings(monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", HEX_KEY)
    with Scripted("500", message=f"key {HEX_KEY} has no access to model my-model") as s:
        b = boundary(s.base_url, key=None, retries=1)
        with caplog.at_level(logging.WARNING), pytest.raises(LMCallError) as e:
            ask(b)
    assert "retry 1" in caplog.text and HEX_KEY not in caplog.text and HEX_KEY not in str(e.value)


def test_the_traceback_of_a_rejected_key_does_not_print_it():
    with Scripted("401", message=f"Incorrect API key provided: {HEX_KEY}") as s:
        b = boundary(s.base_url, key=HEX_KEY)
        with pytest.raises(ModelUnavailableError) as e:
            ask(b)
    printed = "".join(traceback.format_exception(e.value))
    assert "Incorrect API key" in printed and HEX_KEY not in printed


def test_provider_debug_logging_does_not_print_the_key(caplog):
    litellm_log = logging.getLogger("LiteLLM")  # (other tests may stop it propagating: listen on it directly)
    level, disabled = litellm_log.level, litellm_log.disabled
    litellm_log.addHandler(caplog.handler)
    litellm_log.setLevel(logging.DEBUG)
    litellm_log.disabled = False
    try:
        with Scripted("500", message=f"bad {HEX_KEY}") as s:
            b = boundary(s.base_url, key=HEX_KEY)
            with caplog.at_level(logging.DEBUG), pytest.raises(LMCallError):
                ask(b)
            litellm_log.debug("Received openai error - %s", f"bad {HEX_KEY}")
    finally:
        litellm_log.removeHandler(caplog.handler)
        litellm_log.setLevel(level)
        litellm_log.disabled = disabled
    assert "Received openai error" in caplog.text and HEX_KEY not in caplog.text


# -- F5 and F12: what is cached ----------------------------------------------------------------------------------


def null_content(answer: dict[str, Any], n: int) -> dict[str, Any]:
    answer["choices"][0]["message"]["content"] = None if n == 0 else "positive"
    return answer


def cut(reason: str) -> Any:
    def edit(answer: dict[str, Any], n: int) -> dict[str, Any]:
        answer["choices"][0]["finish_reason"] = reason if n == 0 else "stop"
        return answer

    return edit


def test_an_empty_answer_is_not_cached():
    with Scripted(answer="positive", edit=null_content) as s:
        b = boundary(s.base_url)
        assert ask(b).text == ""
        assert ask(b).text == "positive"
    assert s.requests == 2


@pytest.mark.parametrize(("reason", "temperature", "requests"), [("length", 0.7, 2), ("content_filter", 0.0, 2),
                                                                  ("length", 0.0, 1)])  # fmt: skip
def test_answers_cut_short_are_cached_only_when_asking_again_gives_the_same(reason, temperature, requests):
    with Scripted(answer='{"label": "nega', edit=cut(reason)) as s:
        b = boundary(s.base_url)
        first = ask(b, temperature=temperature)
        assert first.finish_reason == reason
        b2 = LMBoundary(b.clients, cache=b.cache)  # a resume on the same cache: sampled keys start again at 0
        ask(b2, temperature=temperature)
    assert s.requests == requests


def test_a_huge_answer_is_used_but_not_cached(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    assert not cache.put("k", {"text": "x" * (getattr(cache_module, "MAX_CACHED_CHARS", 1_000_000) + 1)})
    assert cache.get("k") is None and len(cache) == 0
    assert cache.put("k", {"text": "fine"}) and cache.get("k") == {"text": "fine"}


def test_a_credential_query_in_the_api_base_is_sent_as_a_query_not_glued_to_the_path():
    with Scripted(answer="positive") as s:
        b = boundary(f"{s.base_url}?api-key=QUERYKEY123&v=2")
        assert ask(b).text == "positive"
    assert s.paths == ["/v1/chat/completions?api-key=QUERYKEY123&v=2"]
    assert "QUERYKEY123" not in b.clients["task"].where


# -- F8: calls in flight -----------------------------------------------------------------------------------------


class SlowClient:
    model = "slow/model"

    def __init__(self) -> None:
        self.release = threading.Event()

    def complete(self, messages: list[dict[str, str]], **kw: Any) -> Completion:
        self.release.wait(10)
        return Completion("ok", 1, 1)


def test_calls_in_flight_count_as_sent_calls():
    client = SlowClient()
    b = LMBoundary({"task": client})
    threads = [threading.Thread(target=ask, args=(b, f"q{i}")) for i in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while b.usage().total.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b.usage().total.calls == 3  # what an interrupted run records: they were sent
    client.release.set()
    for t in threads:
        t.join(5)
    assert b.usage().total.calls == 3 and b.usage().total.tokens == 6


# -- F13: the dspy backend stops when every task call fails -------------------------------------------------------


class Failing:
    """A task model whose every call fails (a server answering 500 to all of them)."""

    model = "fake/failing"

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def complete(self, messages: list[dict[str, str]], **kw: Any) -> Completion:
        with self._lock:
            self.calls += 1
        raise LMCallError("HTTP 500 from fake: scripted failure")


def test_the_dspy_backend_stops_early_when_every_task_call_fails():
    from promptomatix.backends.base import RunContext
    from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings
    from promptomatix.lm.fake import FakeLM
    from promptomatix.metrics import MetricsManager
    from tests.test_dspy_backend import INITIAL, SPEC, data, teacher_model

    task = Failing()
    b = LMBoundary({"task": task, "teacher": FakeLM(default=teacher_model, model="fake/teacher")})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=b, metrics=mm, spec=SPEC, num_threads=1, seed=1, progress=lambda e: None)
    settings = DSPySettings(optimizer="miprov2", num_candidates=4, num_trials=8)
    with pytest.raises(ModelUnavailableError, match="scoring the initial program failed"):
        DSPyOptimizer(settings).compile(ctx, INITIAL, data())
    assert task.calls <= 15  # the 9 valid rows of the baseline, and the few already sent beside it


def test_a_run_records_how_many_of_its_calls_have_estimated_usage():
    """The boundary counted estimated calls, but the session's usage and the run's metrics dropped the count."""
    from promptomatix.run.recorder import usage_of

    with Scripted(answer="positive", edit=no_usage) as s:
        b = boundary(s.base_url)
        ask(b, "first review")
        ask(b, "second review")
    assert usage_of(b).estimated_calls == 2
