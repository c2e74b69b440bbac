"""Provider faults over real HTTP: the packaged scripted OpenAI-compatible server on 127.0.0.1
(promptomatix.testing.fault_server).

Each test drives the real client stack (litellm and the OpenAI SDK) through the LM boundary and checks the error
type and message, how many requests the server received (exactly one retry layer: ours), the calls counted and
how long it took. Every server is stopped in teardown; every hang is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from promptomatix.errors import LMCallError, ModelUnavailableError
from promptomatix.lm.boundary import LMBoundary, RetryPolicy
from promptomatix.lm.factory import create_client
from promptomatix.testing.fault_server import FaultServer, closed_port

MSG = [{"role": "user", "content": "Say hi."}]
KEY = "sk-test-not-a-real-key-1234"


def boundary(url: str, *, retries: int = 2, timeout: float = 10.0, model: str = "openai/x", **kw) -> LMBoundary:
    client = create_client(model, api_base=url, api_key=KEY, request_timeout=timeout)
    return LMBoundary({"task": client}, retry=RetryPolicy(max_retries=retries, backoff_base=0.05), **kw)


def call(b: LMBoundary, content: str = "Say hi.") -> str:
    return b.role("task").chat([{"role": "user", "content": content}])


def test_a_good_answer_is_one_request_with_max_tokens_and_the_timeout_sent():
    with FaultServer("ok", answer="hello") as s:
        b = boundary(s.base_url)
        assert call(b) == "hello"
        assert s.requests == 1
        body = s.bodies[0]
        assert body["max_tokens"] == 256 and body["temperature"] == 0.0  # no caller value: the task default
        assert b.usage().by_role["task"].calls == 1


def test_429_honours_retry_after_and_every_attempt_is_a_call():
    with FaultServer("429", retry_after=1) as s:
        seen: list[int] = []
        b = boundary(s.base_url, retries=1, on_call=lambda r: seen.append(r.total.calls))
        start = time.monotonic()
        with pytest.raises(LMCallError) as e:
            call(b)
        elapsed = time.monotonic() - start
    assert str(e.value) == f"HTTP 429 (rate limited) from {s.base_url} (lower --threads or wait)"
    assert s.requests == 2  # ours: 1 + 1 retry; the SDK's own retries are off
    assert 1.0 <= elapsed < 6
    u = b.usage().by_role["task"]
    assert (u.calls, u.failed_calls, u.retries) == (2, 2, 1)
    assert seen == [1, 2]
    assert b.first_error("task") is not None and "HTTP 429" in b.first_error("task").message


def test_500_is_retried_a_bounded_number_of_times():
    with FaultServer("500", message="scripted failure") as s:
        b = boundary(s.base_url, retries=2)
        start = time.monotonic()
        with pytest.raises(LMCallError, match=rf"^HTTP 500 from {s.base_url}: scripted failure$"):
            call(b)
    assert s.requests == 3 and b.usage().by_role["task"].calls == 3
    assert time.monotonic() - start < 5


def test_500_then_success_recovers():
    with FaultServer(["500", "ok"], answer="back") as s:
        b = boundary(s.base_url)
        assert call(b) == "back"
    assert s.requests == 2
    u = b.usage().by_role["task"]
    assert (u.calls, u.failed_calls, u.retries) == (2, 1, 1)


@pytest.mark.parametrize("mode", ["malformed", "html"], ids=["malformed-json", "garbage-body"])
def test_an_unreadable_body_is_one_clear_error_naming_the_server(mode):
    with FaultServer(mode) as s:
        b = boundary(s.base_url, retries=3)
        with pytest.raises(LMCallError) as e:
            call(b)
    assert e.value.message.startswith(f"unreadable response from {s.base_url}: not a chat completion")
    assert "OpenAI-compatible /v1 endpoint" in str(e.value)
    assert not e.value.retryable and s.requests == 1 and b.usage().by_role["task"].calls == 1


def test_garbage_content_is_an_answer_not_an_error():
    with FaultServer("ok", answer="\x00\x01 }{ not json ]] ☃") as s:
        b = boundary(s.base_url)
        assert call(b) == "\x00\x01 }{ not json ]] ☃"
    assert s.requests == 1 and b.first_error("task") is None


def test_a_hung_server_ends_within_the_request_timeout():
    with FaultServer("hang", delay=8) as s:
        b = boundary(s.base_url, retries=1, timeout=1.0)
        start = time.monotonic()
        with pytest.raises(LMCallError) as e:
            call(b)
        elapsed = time.monotonic() - start
    assert str(e.value) == f"no answer from {s.base_url} (openai/x) within 1 s (is the server hung? if it is only slow, raise --request-timeout)"
    assert s.requests == 2 and 2.0 <= elapsed < 5.5
    assert b.usage().by_role["task"].calls == 2


def test_401_is_an_authentication_error_at_once_and_later_calls_send_nothing():
    with FaultServer("401", message="Incorrect API key provided: " + KEY) as s:
        b = boundary(s.base_url, retries=3)
        for i in range(5):
            with pytest.raises(ModelUnavailableError) as e:
                call(b, f"q{i}")
        assert s.requests == 1  # one request, not 5 x 4
    assert str(e.value) == f"HTTP 401 from {s.base_url} (check the key given with --api-key)"
    assert KEY not in str(e.value)
    u = b.usage().by_role["task"]
    assert (u.calls, u.retries, u.refused_calls) == (1, 0, 4)


def test_403_with_the_key_from_the_environment_names_the_env_var(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with FaultServer("403") as s:
        b = LMBoundary({"task": create_client("openai/x", api_base=s.base_url)}, retry=RetryPolicy(max_retries=3))
        with pytest.raises(ModelUnavailableError) as e:
            call(b)
    assert str(e.value) == f"HTTP 403 from {s.base_url} (check OPENAI_API_KEY or pass --api-key)"
    assert s.requests == 1


def test_connection_refused_is_retried_then_the_model_is_gone_for_every_later_call():
    url = f"http://127.0.0.1:{closed_port()}/v1"
    b = boundary(url, retries=2)
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as e:
        call(b)
    assert str(e.value) == f"connection refused at {url} (is the server running?)"
    assert b.usage().by_role["task"].calls == 3  # retried: a server that is starting gets its chance
    assert time.monotonic() - start < 5
    for _ in range(3):  # each later call used to wait out its own retries and backoff
        with pytest.raises(ModelUnavailableError, match="connection refused"):
            call(b)
    u = b.usage().by_role["task"]
    assert (u.calls, u.refused_calls) == (3, 3)


def test_a_server_that_answers_after_refusing_is_not_given_up_on():
    from promptomatix.lm.remote import ProviderError

    refused = ProviderError("connection refused at x", retryable=True, unreachable=True)
    client = _Scripted(refused, refused)
    b = LMBoundary({"task": client}, retry=RetryPolicy(max_retries=2, backoff_base=0.0))
    assert b.role("task").chat([{"role": "user", "content": "hi"}]) == "fine"
    assert b.unavailable("task") is None


def test_no_api_key_fails_before_any_request(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    b = LMBoundary({"task": create_client("openai/gpt-4o-mini")}, retry=RetryPolicy(max_retries=3))
    start = time.monotonic()
    for _ in range(3):
        with pytest.raises(ModelUnavailableError) as e:
            call(b)
    assert str(e.value) == "openai/gpt-4o-mini: no API key (set OPENAI_API_KEY or pass --api-key)"
    u = b.usage().by_role["task"]
    assert (u.calls, u.retries, u.refused_calls) == (1, 0, 2)
    assert time.monotonic() - start < 30  # litellm's first import, no sleeping


def test_an_unknown_model_string_is_unavailable_with_the_fix():
    b = LMBoundary({"task": create_client("nosuch/thing", api_key=KEY)})
    with pytest.raises(ModelUnavailableError) as e:
        call(b)
    assert str(e.value).startswith("unknown model 'nosuch/thing' (write provider/model, e.g. openai/gpt-4o-mini")


def test_a_file_that_is_not_a_gguf_fails_at_client_creation(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_text("this is not a model")
    with pytest.raises(ModelUnavailableError, match=r"is not a GGUF model file \(starts with b'this'"):
        create_client(f"local:{bad}")
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match="is empty"):
        create_client(str(tmp_path / "empty.gguf"))


def test_credentials_in_the_api_base_never_reach_a_message():
    with FaultServer("500", message="upstream said no") as s:
        url = f"http://bob:hunter2pw@127.0.0.1:{s.port}/v1?api-key=QUERYSECRET&region=eu"
        b = boundary(url, retries=0)
        with pytest.raises(LMCallError) as e:
            call(b)
    text = str(e.value)
    assert f"127.0.0.1:{s.port}" in text
    for secret in ("hunter2pw", "bob", "QUERYSECRET", KEY):
        assert secret not in text


def test_ctrl_c_during_a_hung_call_reaches_the_caller_at_once():
    with FaultServer(["ok", "hang"], answer="warm", delay=20) as s:
        b = boundary(s.base_url, timeout=30.0)
        assert call(b, "warm up") == "warm"  # litellm is imported; the next request hangs
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        try:
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                call(b, "this one hangs")
        finally:
            timer.cancel()
            signal.signal(signal.SIGINT, previous)
        elapsed = time.monotonic() - start
    assert elapsed < 3
    assert b.remaining_calls() is None and b._reserved == 0  # the interrupted attempt released its slot
    assert b.usage().by_role["task"].calls == 2


def test_retry_after_as_an_http_date():
    from email.utils import formatdate

    from promptomatix.lm.remote import retry_after_seconds

    class Response:
        headers = {"Retry-After": formatdate(1_000_030, usegmt=True)}

    class RateLimited(Exception):
        response = Response()

    assert retry_after_seconds(RateLimited(), now=1_000_000) == pytest.approx(30, abs=1)
    Response.headers = {"retry-after": "7"}
    assert retry_after_seconds(RateLimited()) == 7
    Response.headers = {"retry-after": "soon"}
    assert retry_after_seconds(RateLimited()) is None


def test_cli_run_against_a_server_that_always_fails_exits_non_zero(tmp_path):
    data = tmp_path / "reviews.csv"
    lines = ["text,label"] + [f"{'great' if i % 2 else 'awful'} film number {i},{'positive' if i % 2 else 'negative'}"
                              for i in range(12)]  # fmt: skip
    data.write_text("\n".join(lines) + "\n")
    with FaultServer("500") as s:
        args = ["optimize", "Classify the sentiment of a movie review as positive or negative",
                "--model", "openai/fake", "--api-base", s.base_url, "--api-key", KEY, "--data", str(data),
                "--input-fields", "text", "--output-fields", "label", "--synthetic-data-size", "0",
                "--max-calls", "40", "--quiet",
                "--sessions-dir", str(tmp_path / "s")]  # fmt: skip
        code = "import sys\nfrom promptomatix.cli.app import main\nmain(sys.argv[1:])\n"
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=240)
        received = s.requests
    assert received <= 40  # --max-calls counts every HTTP attempt
    assert r.returncode != 0, r.stdout[-2000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors and f"HTTP 500 from {s.base_url}" in errors[-1], r.stderr[-2000:]  # the cause, not the budget
    assert KEY not in r.stderr + r.stdout
    sessions = list((tmp_path / "s").rglob("session.json"))
    assert sessions and all(json.loads(p.read_text())["status"] == "failed" for p in sessions)


class _Scripted:
    """Raises the given errors in order, then answers."""

    def __init__(self, *errors):
        self.errors, self.model = list(errors), "fake/scripted"

    def complete(self, messages, **kw):
        if self.errors:
            raise self.errors.pop(0)
        from promptomatix.lm.fake import FakeLM

        return FakeLM(default="fine").complete(messages, **kw)


def test_a_connection_reset_mid_request_is_said_as_such_not_as_a_wrong_api_base():
    # The server read the request, then reset the connection: the address was right, so "check --api-base" (what a
    # connect failure gets) would send the user the wrong way.
    with FaultServer("reset") as s:
        b = boundary(s.base_url, retries=1)
        with pytest.raises(LMCallError) as e:
            call(b)
    assert s.requests == 2  # a reset is retried
    assert str(e.value).startswith(f"connection reset by {s.base_url}") and "--api-base" not in str(e.value)
    assert b.unavailable("task") is None  # a server that resets is there: later calls still try it
