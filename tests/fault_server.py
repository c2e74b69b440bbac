"""A scripted OpenAI-compatible server on 127.0.0.1 that answers /v1/chat/completions with one fault per test.

Stdlib only (http.server in a daemon thread, a free port). It counts the requests it received, so a test can
check how many HTTP attempts one logical call became. Every hang is bounded (`hang_seconds`), and `stop()`
ends the server; nothing it does loops without a bound.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Fault = Callable[["_Handler"], None]


def completion_body(text: str = "ok", model: str = "fake") -> bytes:
    """A minimal, valid chat completion."""
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        owner = self.server.owner
        with owner.lock:
            owner.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        owner.fault(self)

    def do_GET(self) -> None:
        self.send(200, json.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FaultServer


class FaultServer:
    """Start with a fault; `url` is the api_base (…/v1); `requests` lists what arrived."""

    def __init__(self, fault: Fault, *, hang_seconds: float = 5.0) -> None:
        self.fault = fault
        self.hang_seconds = hang_seconds
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()  # wakes any hanging handler
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


# -- faults ------------------------------------------------------------------------------------------------------


def ok(text: str = "ok") -> Fault:
    return lambda h: h.send(200, completion_body(text))


def status(code: int, headers: dict[str, str] | None = None, message: str = "scripted failure") -> Fault:
    body = json.dumps({"error": {"message": message, "type": "server_error", "code": code}}).encode()
    return lambda h: h.send(code, body, headers)


def malformed_json() -> Fault:
    return lambda h: h.send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ')


def garbage_body() -> Fault:
    return lambda h: h.send(200, b"<html><body>502 upstream garbage</body></html>", {"Content-Type": "text/html"})


def hang() -> Fault:
    """Answer nothing until the bound (`hang_seconds`) or the server stops, then close."""

    def fault(h: _Handler) -> None:
        h.server.owner.stopping.wait(h.server.owner.hang_seconds)
        h.close_connection = True

    return fault


def sequence(*faults: Fault) -> Fault:
    """The n-th request gets the n-th fault; the last one repeats."""
    state = {"n": 0}
    lock = threading.Lock()

    def fault(h: _Handler) -> None:
        with lock:
            i = min(state["n"], len(faults) - 1)
            state["n"] += 1
        faults[i](h)

    return fault


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
