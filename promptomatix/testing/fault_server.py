"""A scripted OpenAI-compatible server on 127.0.0.1 that answers well, slowly, or with a chosen fault.

It ships in the package (as DSPy ships DummyLM) so tests, the hostile-input sweep and users' own CI can drive the
real HTTP path (litellm → provider SDK → socket) without a key. Modes:

- ``ok``: a valid chat completion whose content satisfies the request's JSON schema (first enum value, short
  strings), or ``answer`` when given; ``slow`` is ``ok`` after ``delay`` seconds;
- ``429`` (with ``Retry-After: retry_after``), ``500``, ``401``, ``403``: that status with an OpenAI-style error
  body whose message is ``message`` when given;
- ``malformed``: status 200 and a body that is not JSON; ``html``: status 200 and an HTML page (a proxy's error
  page); ``garbage``: a valid completion whose content is noise;
- ``hang``: accept the request and answer nothing for ``delay`` seconds (bounded), then close;
- ``reset``: read the request, then reset the connection (TCP RST) without an answer.

A list of modes scripts the requests in order: ``FaultServer(["500", "ok"])`` fails the first request and answers
every later one (the last mode repeats). Every request is counted (``server.requests``) and its JSON body kept
(``server.bodies``), so a test can assert how many HTTP attempts one call made and what they sent.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "slow", "429", "500", "401", "403", "malformed", "html", "garbage", "hang", "reset")
_DEFAULT_MESSAGES = {"401": "Incorrect API key provided", "403": "You are not allowed to use this model"}


def schema_instance(schema: dict[str, Any] | None) -> Any:
    """A small value that satisfies a JSON schema: what a compliant model would send."""
    if not isinstance(schema, dict):
        return "ok"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: schema_instance(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items"))]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    return "a short answer"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released): for connection-refused tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FaultServer:
    """``with FaultServer("429") as s: ...`` serves on ``s.base_url`` (ending in /v1) until the block ends."""

    def __init__(
        self,
        mode: str | Sequence[str] = "ok",
        *,
        delay: float = 5.0,
        retry_after: float = 1.0,
        answer: str | None = None,
        message: str | None = None,
    ) -> None:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        unknown = [m for m in modes if m not in MODES]
        if not modes or unknown:
            raise ValueError(f"unknown mode {(unknown or [''])[0]!r}; modes: {', '.join(MODES)}")
        self.modes = modes
        self.delay = delay
        self.retry_after = retry_after
        self.answer = answer
        self.message = message
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; any hanging or slow request is woken so nothing outlives the block."""
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _count(self, body: dict[str, Any]) -> str:
        """Record the request and pick its mode: the n-th request gets the n-th mode, the last one repeats."""
        with self._lock:
            n = self.requests
            self.requests += 1
            self.bodies.append(body)
        return self.modes[min(n, len(self.modes) - 1)]

    def completion(self, body: dict[str, Any], mode: str = "ok") -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
        if mode == "garbage":
            content = "#$%^ lorem ipsum zzz"
        elif self.answer is not None:
            content = self.answer
        else:
            content = json.dumps(schema_instance(schema)) if schema else "ok"
        return {
            "id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fault"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }  # fmt: skip

    def error_body(self, mode: str) -> dict[str, Any]:
        """An OpenAI-style error body for a status mode."""
        message = self.message or _DEFAULT_MESSAGES.get(mode, f"fault server: {mode}")
        if mode in ("401", "403"):
            return {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}
        return {"error": {"message": message, "type": "server_error", "code": mode}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout, Ctrl-C)
                    return

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fault", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                self._answer(server._count(body), body)

            def _reset(self) -> None:
                """Close with SO_LINGER 0: the kernel sends RST, the client sees a connection reset."""
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def _answer(self, mode: str, body: dict[str, Any]) -> None:
                if mode in ("slow", "hang"):
                    server._stop.wait(server.delay)
                    if mode == "hang":
                        return  # close without an answer
                if mode == "reset":
                    self._reset()
                elif mode == "429":
                    self._send(429, server.error_body(mode), {"Retry-After": f"{server.retry_after:g}"})
                elif mode in ("500", "401", "403"):
                    self._send(int(mode), server.error_body(mode))
                elif mode == "malformed":
                    self._send(200, b"{this is not json")
                elif mode == "html":
                    self._send(200, b"<html><body>502 upstream garbage</body></html>", {"Content-Type": "text/html"})
                else:
                    self._send(200, server.completion(body, mode))

        return Handler
