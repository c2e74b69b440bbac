"""A scripted OpenAI-compatible server on 127.0.0.1 that answers well, slowly, or with a chosen fault.

It ships in the package (as DSPy ships DummyLM) so tests, the hostile-input sweep and users' own CI can drive the
real HTTP path (litellm → provider SDK → socket) without a key. Modes:

- ``ok``: a valid chat completion whose content satisfies the request's JSON schema (first enum value, short
  strings), or ``answer`` when given; ``slow`` is ``ok`` after ``delay`` seconds;
- ``429`` (with ``Retry-After: retry_after``), ``500``, ``401``: that status with an OpenAI-style error body;
- ``malformed``: status 200 and a body that is not JSON; ``garbage``: a valid completion whose content is noise;
- ``hang``: accept the request and answer nothing for ``delay`` seconds (bounded), then close.

Every request is counted (``server.requests``), so a test can assert how many HTTP attempts one call made.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = ("ok", "slow", "429", "500", "401", "malformed", "garbage", "hang")


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


class FaultServer:
    """``with FaultServer("429") as s: ...`` serves on ``s.base_url`` (ending in /v1) until the block ends."""

    def __init__(
        self, mode: str = "ok", *, delay: float = 5.0, retry_after: float = 1.0, answer: str | None = None
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        self.mode = mode
        self.delay = delay
        self.retry_after = retry_after
        self.answer = answer
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _count(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
        if self.mode == "garbage":
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
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
                server._count(body)
                self._answer(body)

            def _answer(self, body: dict[str, Any]) -> None:
                mode = server.mode
                error = {"error": {"message": f"fault server: {mode}", "type": "server_error", "code": mode}}
                if mode in ("slow", "hang"):
                    server._stop.wait(server.delay)
                    if mode == "hang":
                        return  # close without an answer
                if mode == "429":
                    self._send(429, error, {"Retry-After": f"{server.retry_after:g}"})
                elif mode == "500":
                    self._send(500, error)
                elif mode == "401":
                    self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                               "code": "invalid_api_key"}})  # fmt: skip
                elif mode == "malformed":
                    self._send(200, b"{this is not json")
                else:
                    self._send(200, server.completion(body))

        return Handler
