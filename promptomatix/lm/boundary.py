"""The one boundary every model call of a run goes through.

It counts calls, tokens, USD and seconds per role (task, teacher, judge), enforces the run's budget by raising
BudgetExceeded, retries transient provider errors with exponential backoff, and caches responses. It belongs to a
run object: there is no module-global LM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from promptomatix.errors import BudgetExceeded, LMCallError
from promptomatix.lm.cache import ResponseCache, request_key
from promptomatix.lm.fake import Completion

log = logging.getLogger(__name__)

ROLES = ("task", "teacher", "judge")


class ModelClient(Protocol):
    model: str

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion: ...


class Budget(BaseModel):
    """Limits for one run; None means unlimited. Cached (replayed) calls are free and never count."""

    model_config = ConfigDict(extra="forbid")

    max_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    max_usd: float | None = Field(default=None, ge=0)
    max_seconds: float | None = Field(default=None, ge=0)
    reserved_calls: int = Field(default=0, ge=0)  # held back from max_calls (for the final held-out scoring)


class RoleUsage(BaseModel):
    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: RoleUsage) -> RoleUsage:
        return RoleUsage(**{k: getattr(self, k) + getattr(other, k) for k in RoleUsage.model_fields})


class UsageReport(BaseModel):
    by_role: dict[str, RoleUsage]
    total: RoleUsage
    elapsed_seconds: float
    models: dict[str, str]


@dataclass
class RetryPolicy:
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0


class LMBoundary:
    """Owns the clients of a run's roles and all accounting. Thread-safe."""

    def __init__(
        self,
        clients: dict[str, ModelClient],
        *,
        budget: Budget | None = None,
        cache: ResponseCache | None = None,
        retry: RetryPolicy | None = None,
        on_call: Callable[[UsageReport], None] | None = None,
    ) -> None:
        if "task" not in clients:
            raise ValueError("an LM boundary needs at least a 'task' client")
        self.clients = {
            "task": clients["task"],
            "teacher": clients.get("teacher", clients["task"]),
        }
        self.clients["judge"] = clients.get("judge", self.clients["teacher"])
        self.budget = budget or Budget()
        self.cache = cache if cache is not None else ResponseCache(None)
        self.retry = retry or RetryPolicy()
        self.on_call = on_call
        self._usage = {r: RoleUsage() for r in ROLES}
        self._lock = threading.Lock()
        self._occurrences: dict[str, int] = {}
        self._reserved = 0
        self._started = time.monotonic()
        self._exhausted: BudgetExceeded | None = None

    # -- public -------------------------------------------------------------------------------------------------
    def role(self, name: str) -> RoleLM:
        if name not in self.clients:
            raise ValueError(f"unknown role {name!r}; roles are {', '.join(ROLES)}")
        return RoleLM(self, name)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def usage(self) -> UsageReport:
        with self._lock:
            by_role = {r: u.model_copy() for r, u in self._usage.items()}
        total = RoleUsage()
        for u in by_role.values():
            total = total.add(u)
        return UsageReport(
            by_role=by_role,
            total=total,
            elapsed_seconds=round(self.elapsed, 3),
            models={r: c.model for r, c in self.clients.items()},
        )

    def set_budget(self, budget: Budget) -> None:
        """Replace the limits (e.g. release calls held back for the final report); clears a spent state."""
        with self._lock:
            self.budget = budget
            self._exhausted = None

    def remaining_calls(self) -> int | None:
        """Calls still allowed before the budget stops the run (those held back for the final report excluded)."""
        b = self.budget
        if b.max_calls is None:
            return None
        with self._lock:
            used = sum(u.calls for u in self._usage.values()) + self._reserved
        return max(0, b.max_calls - b.reserved_calls - used)

    def complete(
        self,
        role: str,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache: bool = True,
    ) -> Completion:
        client = self.clients[role]
        payload = {
            "messages": messages,
            "json_schema": json_schema,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        key = None
        if cache:
            base = request_key(client.model, payload)
            with self._lock:
                n = self._occurrences.get(base, 0) if (temperature or 0) > 0 else 0
                if (temperature or 0) > 0:
                    self._occurrences[base] = n + 1
            key = request_key(client.model, {**payload, "occurrence": n})
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self._usage[role].cached_calls += 1
                return Completion(**{**hit, "cost_usd": 0.0})
        self._reserve()
        start = time.monotonic()
        try:
            result = self._call_with_retries(role, client, messages, json_schema, max_tokens, temperature)
        except BaseException:  # KeyboardInterrupt too: the reserved slot must be released
            with self._lock:
                self._reserved -= 1
                u = self._usage[role]
                u.calls += 1
                u.failed_calls += 1
                u.seconds += time.monotonic() - start
            raise
        with self._lock:
            self._reserved -= 1
            u = self._usage[role]
            u.calls += 1
            u.prompt_tokens += result.prompt_tokens
            u.completion_tokens += result.completion_tokens
            u.cost_usd += result.cost_usd
            u.seconds += time.monotonic() - start
        if key is not None:
            self.cache.put(key, result.__dict__)
        if self.on_call is not None:
            self.on_call(self.usage())
        return result

    # -- internals ----------------------------------------------------------------------------------------------
    def _reserve(self) -> None:
        """Check every limit and reserve a call slot atomically, so parallel threads cannot overshoot."""
        b = self.budget
        with self._lock:
            if self._exhausted is not None:
                raise self._exhausted
            calls = sum(u.calls for u in self._usage.values()) + self._reserved
            tokens = sum(u.tokens for u in self._usage.values())
            usd = sum(u.cost_usd for u in self._usage.values())
            reason = None
            if b.max_calls is not None and calls >= b.max_calls - b.reserved_calls:
                held = f" ({b.reserved_calls} held back for the final scoring)" if b.reserved_calls else ""
                reason = ("calls", f"budget of {b.max_calls} LM calls spent{held}")
            elif b.max_tokens is not None and tokens >= b.max_tokens:
                reason = ("tokens", f"budget of {b.max_tokens} tokens spent ({tokens} used)")
            elif b.max_usd is not None and usd >= b.max_usd:
                reason = ("usd", f"budget of ${b.max_usd:.4f} spent (${usd:.4f} used)")
            elif b.max_seconds is not None and self.elapsed >= b.max_seconds:
                reason = ("seconds", f"time budget of {b.max_seconds:.0f} s spent")
            if reason is not None:
                self._exhausted = BudgetExceeded(
                    reason[1], limit=reason[0], hint="raise the limit (--max-calls/--max-usd/--max-minutes)"
                )
                raise self._exhausted
            self._reserved += 1

    def _call_with_retries(
        self,
        role: str,
        client: ModelClient,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        max_tokens: int | None,
        temperature: float | None,
    ) -> Completion:
        attempt = 0
        while True:
            try:
                return client.complete(
                    messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature
                )
            except LMCallError as e:
                if not e.retryable or attempt >= self.retry.max_retries:
                    raise
                delay = min(self.retry.backoff_max, self.retry.backoff_base * (2**attempt))
                attempt += 1
                with self._lock:
                    self._usage[role].retries += 1
                log.warning("%s call failed (%s); retry %d in %.1f s", role, e.message, attempt, delay)
                if delay:
                    time.sleep(delay)


class RoleLM:
    """The boundary seen from one role: satisfies the ChatModel protocol the pipeline stages take."""

    def __init__(self, boundary: LMBoundary, role: str) -> None:
        self.boundary = boundary
        self.role = role

    @property
    def model(self) -> str:
        return self.boundary.clients[self.role].model

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> Completion:
        return self.boundary.complete(self.role, messages, **kwargs)

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache: bool = True,
    ) -> str:
        return self.complete(
            messages, json_schema=json_schema, max_tokens=max_tokens, temperature=temperature, cache=cache
        ).text

    def __repr__(self) -> str:
        return f"RoleLM(role={self.role!r}, model={self.model!r})"
