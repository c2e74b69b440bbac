"""The packaged fault server's own contract (promptomatix.testing.fault_server), which users' CI relies on.

Each mode is checked on the wire with a plain HTTP client (bounded by socket timeouts), so a mode that drifts
(a wrong status, a missing Retry-After, a reset that is only a close) fails here rather than as a confusing
error deep in the client stack. The boundary tests for these faults are in test_fault_server.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from promptomatix.lm.boundary import LMBoundary, RetryPolicy
from promptomatix.lm.factory import create_client
from promptomatix.testing.fault_server import MODES, FaultServer, closed_port

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}, "n": {"type": "integer"}}}


def post(url: str, body: dict[str, Any], timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One POST to …/chat/completions; an HTTP error status is returned, not raised."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url + "/chat/completions", data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_ok_answers_the_requested_schema_and_keeps_each_body():
    with FaultServer("ok") as s:
        status, headers, raw = post(s.base_url, {"model": "m1", "response_format": {"json_schema": {"schema": SCHEMA}}})
        post(s.base_url, {"model": "m2"})
    content = json.loads(raw)["choices"][0]["message"]["content"]
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(content) == {"label": "positive", "n": 1}
    assert s.requests == 2 and [b["model"] for b in s.bodies] == ["m1", "m2"]


def test_a_list_of_modes_scripts_the_requests_in_order_and_the_last_repeats():
    with FaultServer(["500", "429", "ok"], answer="back", retry_after=2.5, message="busy") as s:
        seen = [post(s.base_url, {}) for _ in range(4)]
    assert [status for status, _, _ in seen] == [500, 429, 200, 200]
    assert json.loads(seen[0][2])["error"]["message"] == "busy"
    assert seen[1][1]["Retry-After"] == "2.5"
    assert json.loads(seen[3][2])["choices"][0]["message"]["content"] == "back"
    assert s.requests == 4


@pytest.mark.parametrize(
    ("mode", "status", "message"),
    [("401", 401, "Incorrect API key provided"), ("403", 403, "You are not allowed to use this model"),
     ("500", 500, "fault server: 500"), ("429", 429, "fault server: 429")],
)  # fmt: skip
def test_each_status_mode_sends_its_status_and_an_openai_error_body(mode, status, message):
    with FaultServer(mode) as s:
        got, _, raw = post(s.base_url, {})
    assert got == status and json.loads(raw)["error"]["message"] == message


def test_unreadable_bodies_are_status_200_with_their_own_content_type():
    with FaultServer("malformed") as s:
        malformed = post(s.base_url, {})
    with FaultServer("html") as s:
        html = post(s.base_url, {})
    assert malformed[0] == 200 and malformed[2] == b"{this is not json"
    assert html[0] == 200 and html[1]["Content-Type"] == "text/html" and html[2].startswith(b"<html>")
    with pytest.raises(ValueError):
        json.loads(html[2])


def test_garbage_is_a_valid_completion_whose_content_is_noise():
    with FaultServer("garbage", answer="ignored") as s:
        status, _, raw = post(s.base_url, {"response_format": {"json_schema": {"schema": SCHEMA}}})
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "#$%^ lorem ipsum zzz"


def test_reset_is_a_tcp_reset_after_the_request_is_read():
    with FaultServer("reset") as s, socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        with pytest.raises(ConnectionResetError):
            c.recv(100)
        assert s.requests == 1


def test_a_reset_is_retried_and_a_server_that_answers_afterwards_is_used():
    with FaultServer(["reset", "reset", "ok"], answer="fine") as s:
        client = create_client("openai/x", api_base=s.base_url, api_key="sk-test-1", request_timeout=10.0)
        b = LMBoundary({"task": client}, retry=RetryPolicy(max_retries=2, backoff_base=0.05))
        assert b.role("task").chat([{"role": "user", "content": "hi"}]) == "fine"
    u = b.usage().by_role["task"]
    assert s.requests == 3 and (u.calls, u.failed_calls, u.retries) == (3, 2, 2)
    assert b.unavailable("task") is None


def test_slow_answers_after_the_delay_and_hang_never_answers():
    with FaultServer("slow", delay=0.5) as s:
        start = time.monotonic()
        assert post(s.base_url, {})[0] == 200
        assert 0.5 <= time.monotonic() - start < 4
    with FaultServer("hang", delay=0.5) as s:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            post(s.base_url, {})  # the server closes without a status line
        assert s.requests == 1


def test_close_wakes_a_hanging_request_at_once():
    errors: list[BaseException] = []

    def hung() -> None:
        try:
            post(s.base_url, {}, timeout=10)
        except Exception as e:  # recorded for the assertion below
            errors.append(e)

    with FaultServer("hang", delay=30) as s:
        t = threading.Thread(target=hung, daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while s.requests == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.requests == 1
        start = time.monotonic()
    t.join(timeout=5)
    assert time.monotonic() - start < 3 and not t.is_alive() and errors


def test_unknown_modes_are_refused_with_the_list():
    for bad in ("teapot", ["ok", "teapot"], []):
        with pytest.raises(ValueError, match="modes: " + ", ".join(MODES)):
            FaultServer(bad)


def test_closed_port_refuses_and_the_server_binds_loopback_only():
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", closed_port()), timeout=2):
        pass
    with FaultServer() as s:
        assert s.base_url == f"http://127.0.0.1:{s.port}/v1"
        assert s._httpd.server_address[0] == "127.0.0.1"
