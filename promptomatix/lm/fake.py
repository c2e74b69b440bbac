"""A scripted fake model (like DSPy's DummyLM) that ships in the package, so tests and engine benchmarks need no model.

It answers from a queue, or by the first rule whose substring occurs in the prompt, or with a default, or with a
callable of the messages. It can sleep a fixed latency per call, to measure concurrency honestly.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from promptomatix.errors import LMCallError
from promptomatix.lm.types import Completion

__all__ = ["Completion", "FakeLM", "prompt_text"]  # Completion lives in lm.types; re-exported for old imports

Responder = Callable[[list[dict[str, str]]], str]


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def prompt_text(messages: list[dict[str, str]]) -> str:
    return "\n".join(str(m.get("content", "")) for m in messages)


@dataclass
class FakeLM:
    """Scripted responses. Rules are (substring, answer) pairs checked in order; an answer may be a callable.

    `fail_times` makes the first N calls raise a retryable LMCallError (to test retries).
    """

    responses: Iterable[str] = ()
    rules: list[tuple[str, str | Responder]] = field(default_factory=list)
    default: str | Responder | None = None
    latency: float = 0.0
    fail_times: int = 0
    model: str = "fake/scripted"
    cost_per_call: float = 0.0

    def __post_init__(self) -> None:
        self._queue: deque[str] = deque(self.responses)
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []

    def worst_cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of a call, known before it is sent (the boundary keeps a dollar limit with it)."""
        return self.cost_per_call

    def _answer(self, messages: list[dict[str, str]]) -> str:
        text = prompt_text(messages)
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        for needle, answer in self.rules:
            if needle in text:
                return answer(messages) if callable(answer) else answer
        if self.default is None:
            raise LMCallError(f"FakeLM has no scripted answer for a prompt starting {text[:80]!r}")
        return self.default(messages) if callable(self.default) else self.default

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        with self._lock:
            self.calls.append(
                {"messages": messages, "json_schema": json_schema, "temperature": temperature, "max_tokens": max_tokens}
            )
            fail = self.fail_times > 0
            if fail:
                self.fail_times -= 1
        if self.latency:
            time.sleep(self.latency)
        if fail:
            raise LMCallError("FakeLM scripted transient failure", retryable=True)
        answer = self._answer(messages)
        if not isinstance(answer, str):
            answer = json.dumps(answer)
        if max_tokens and _count_tokens(answer) > max_tokens:  # a real model stops at max_tokens (a token: a word)
            answer = " ".join(answer.split()[:max_tokens])
        return Completion(
            text=answer,
            prompt_tokens=_count_tokens(prompt_text(messages)),
            completion_tokens=_count_tokens(answer),
            cost_usd=self.cost_per_call,
            model=self.model,
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache: bool = True,
    ) -> str:
        """Standalone use (unit tests of one stage); runs go through the LM boundary instead."""
        return self.complete(messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature).text
