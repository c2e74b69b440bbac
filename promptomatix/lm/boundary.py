"""The one boundary every model call of a run goes through.

It counts calls, tokens, USD and seconds per role (task, teacher, judge), enforces the run's budget by raising
BudgetExceeded, retries transient provider errors with exponential backoff (honouring Retry-After), and caches
responses. It is the one retry layer: every HTTP attempt reserves a budget slot and counts as a call. Every call
carries a max_tokens (the role's default, capped by the run's setting) so no completion runs to the context limit.
A model that can never answer (no key, rejected key, unknown model, bad GGUF) is remembered, so later calls fail
at once without another request. It belongs to a run object: there is no module-global LM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from promptomatix.errors import BudgetExceeded, LMCallError, ModelUnavailableError, PluginError
from promptomatix.lm.cache import ResponseCache, cacheable, request_key
from promptomatix.lm.ceiling import Ceiling, CeilingEstimator, limit_reason
from promptomatix.lm.deadline import budget_deadline
from promptomatix.lm.retry import RETRY_AFTER_CAP, CallError, RetryPolicy, retry_delay
from promptomatix.lm.sampling import DEFAULT_MAX_TOKENS, RoleSettings, resolve_sampling
from promptomatix.lm.types import Completion, ModelClient
from promptomatix.lm.usage import Budget, RoleUsage, UsageReport
from promptomatix.sessions.secrets import scrub_text

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MAX_TOKENS", "RETRY_AFTER_CAP", "Budget", "LMBoundary", "RetryPolicy", "RoleLM", "RoleSettings",
    "RoleUsage", "UsageReport", "resolve_sampling",
]  # fmt: skip

ROLES = ("task", "teacher", "judge")
LIMIT_FLAGS = {"calls": "--max-calls", "tokens": "--max-total-tokens", "usd": "--max-usd", "seconds": "--max-minutes"}


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
        role_settings: dict[str, RoleSettings] | None = None,
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
        self.role_settings = {r: (role_settings or {}).get(r, RoleSettings()) for r in ROLES}
        self._usage = {r: RoleUsage() for r in ROLES}
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # notified when a call is counted (its ceiling released)
        self._occurrences: dict[str, int] = {}
        self._reserved = 0
        self._sending = {r: 0 for r in ROLES}  # attempts reserved and not yet counted, by role
        self._ceilings = CeilingEstimator()
        self._in_flight = Ceiling()  # the ceilings of the calls sent and not yet counted
        self._started = time.monotonic()
        self._exhausted: BudgetExceeded | None = None
        self._first_error: dict[str, CallError | PluginError] = {}
        self._last_error: dict[str, CallError | PluginError] = {}
        self._dead: dict[int, ModelUnavailableError] = {}  # id(client) → why it can never answer

    # -- public -------------------------------------------------------------------------------------------------
    def role(self, name: str) -> RoleLM:
        if name not in self.clients:
            raise ValueError(f"unknown role {name!r}; roles are {', '.join(ROLES)}")
        return RoleLM(self, name)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def usage(self) -> UsageReport:
        """What the run spent. Calls in flight count as calls already (sent, so possibly paid): a run ended by
        Ctrl-C records them though their worker threads have not counted them yet; their tokens are not known."""
        with self._lock:
            by_role = {r: u.model_copy() for r, u in self._usage.items()}
            for r, n in self._sending.items():
                by_role[r].calls += n
        total = RoleUsage()
        for u in by_role.values():
            total = total.add(u)
        return UsageReport(
            by_role=by_role,
            total=total,
            elapsed_seconds=round(self.elapsed, 3),
            models={r: c.model for r, c in self.clients.items()},
        )

    def first_error(self, role: str) -> CallError | PluginError | None:
        """The first provider error a role's calls met (its message names cause and fix), or None."""
        with self._lock:
            return self._first_error.get(role)

    def last_error(self, role: str) -> CallError | PluginError | None:
        with self._lock:
            return self._last_error.get(role)

    def unavailable(self, role: str) -> ModelUnavailableError | None:
        """Why the role's model can never answer (no/rejected key, unknown model, bad GGUF), or None."""
        with self._lock:
            return self._dead.get(id(self.clients[role]))

    def set_budget(self, budget: Budget) -> None:
        """Replace the limits (e.g. release calls held back for the final report); clears a spent state."""
        with self._lock:
            self.budget = budget
            self._exhausted = None

    def surely_affords(self, calls: int) -> bool:
        """The budget cannot stop the next `calls` calls: no token or cost limit, and calls enough left. Work is
        run side by side only then; under a limit that can bind, the order decides what gets scored."""
        b = self.budget
        left = self.remaining_calls()
        return b.max_tokens is None and b.max_usd is None and (left is None or left >= calls)

    def remaining_calls(self, *, clamp: bool = True) -> int | None:
        """Calls still allowed before the budget stops the run (those held back for the final report excluded);
        `clamp=False`: negative by the calls the budget is short of."""
        b = self.budget
        if b.max_calls is None:
            return None
        with self._lock:
            used = sum(u.calls for u in self._usage.values()) + self._reserved
        left = b.max_calls - b.reserved_calls - used
        return max(0, left) if clamp else left

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
        max_tokens, temperature = resolve_sampling(role, self.role_settings[role], max_tokens, temperature)
        payload = {
            "messages": messages,
            "json_schema": json_schema,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        key = self._cache_key(client, payload) if cache else None
        if key is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self._usage[role].cached_calls += 1
                return Completion(**{**hit, "cost_usd": 0.0})
        self._refuse_if_dead(role, client)
        result = self._call_with_retries(role, client, payload)
        if key is not None and cacheable(result, payload["temperature"]):
            self.cache.put(key, result.__dict__)
        return result

    def greedy(self, *roles: str) -> bool:
        """True if no run setting makes these roles sample (our callers ask them for temperature 0)."""
        return all(self.role_settings[r].temperature in (None, 0.0) for r in roles)

    # -- internals ----------------------------------------------------------------------------------------------
    def _cache_key(self, client: ModelClient, payload: dict[str, Any]) -> str:
        """Sampled requests (temperature > 0) are keyed by occurrence, so repeats differ but replay in order."""
        n = 0
        if payload["temperature"] > 0:  # (a greedy request's key is hashed once: it is a tenth of a call's CPU)
            base = request_key(client.model, payload)
            with self._lock:
                n = self._occurrences.get(base, 0)
                self._occurrences[base] = n + 1
        return request_key(client.model, {**payload, "occurrence": n})

    def _refuse_if_dead(self, role: str, client: ModelClient) -> None:
        with self._lock:
            dead = self._dead.get(id(client))
            if dead is None:
                return
            self._usage[role].refused_calls += 1
            again = ModelUnavailableError(dead.message, hint=dead.hint)
            self._first_error.setdefault(role, again)
            self._last_error[role] = again
        raise again

    def _reserve(self, role: str, client: ModelClient, payload: dict[str, Any]) -> Ceiling:
        """Check every limit and reserve a call slot atomically, so parallel threads cannot overshoot. Under a
        token or dollar limit the call's ceiling (its prompt and max_tokens, at its price) must fit beside the
        calls in flight: the limit is never exceeded, not even by the last call. A call that would fit but for
        the ceilings of calls in flight waits for them (they take less than their ceilings) instead of ending."""
        with self._freed:
            while True:
                if self._exhausted is not None:
                    raise self._exhausted
                c, reason, wait = self._check(role, client, payload)
                if wait:
                    self._freed.wait(timeout=1.0)  # (a time budget is checked again after each wait)
                    continue
                if reason is not None:
                    limit, message = reason
                    self._exhausted = BudgetExceeded(message, limit=limit, hint=self._limit_hint(limit))
                    raise self._exhausted
                self._reserved += 1
                self._sending[role] += 1
                self._in_flight = Ceiling(self._in_flight.tokens + c.tokens, self._in_flight.usd + c.usd)
                return c

    def _limit_hint(self, limit: str) -> str:
        """The fix for a spent limit. Time spent waiting on a server that never answered (a request cut at the
        time budget's end) is not fixed by more time: the error's own hint names the server. Call under the lock."""
        hung = [e for e in self._last_error.values() if getattr(e, "hung", False)]
        if limit == "seconds" and hung and hung[0].hint:
            return hung[0].hint
        return f"raise the limit ({LIMIT_FLAGS[limit]})"

    def _check(
        self, role: str, client: ModelClient, payload: dict[str, Any]
    ) -> tuple[Ceiling, tuple[str, str] | None, bool]:
        """The call's ceiling, why the budget refuses it (or None), and whether it only has to wait for the calls
        in flight. Call under the lock."""
        b = self.budget
        calls = sum(u.calls for u in self._usage.values()) + self._reserved
        limited = b.max_tokens is not None or b.max_usd is not None  # else no need to size anything
        c = self._ceilings.ceiling(role, client, payload, priced=b.max_usd is not None) if limited else Ceiling()
        if b.max_calls is not None and calls >= b.max_calls - b.reserved_calls:
            held = f" ({b.reserved_calls} held back for the final scoring)" if b.reserved_calls else ""
            return c, ("calls", f"budget of {b.shown('max_calls'):.0f} LM calls spent{held}"), False
        if limited and (reason := self._over_limit(c, self._in_flight)) is not None:
            return c, reason, bool(self._in_flight.tokens) and self._over_limit(c, Ceiling()) is None
        if b.max_seconds is not None and self.elapsed >= b.max_seconds:
            return c, ("seconds", f"time budget of {b.shown('max_seconds'):.0f} s spent"), False
        return c, None, False

    def _over_limit(self, c: Ceiling, in_flight: Ceiling) -> tuple[str, str] | None:
        """Why a call of ceiling `c` does not fit the token or dollar limit beside `in_flight`, or None. Call
        under the lock."""
        tokens = sum(u.tokens for u in self._usage.values())
        usd = sum(u.cost_usd for u in self._usage.values())
        held = self._held_back(self.budget.reserved_calls)
        return limit_reason(self.budget, Ceiling(tokens, usd), in_flight, c, held)

    def _held_back(self, calls: int) -> tuple[float, float]:
        """Tokens and dollars `calls` held-out calls will take (the held-out scoring asks the task model, and a
        judge if the metric has one), plus what the last of them may need beyond that (its ceiling must fit); 0
        before any such call. Call under the lock.

        Half the held-out calls read the chosen prompt, which may be the dearest seen (demos): each call is sized
        halfway between the mean and the dearest task-side call. At the mean alone, a run under --max-usd chose a
        prompt with 4 demos and had no budget left to score it on the test rows: no verdict."""
        done = [self._usage[r] for r in ("task", "judge") if self._usage[r].calls]
        n = sum(u.calls - u.failed_calls for u in done)
        if not calls or not n:
            return 0.0, 0.0
        top = [self._ceilings.dearest.get(r, Ceiling()) for r in ("task", "judge")]
        dear = Ceiling(max(t.tokens for t in top), max(t.usd for t in top))
        tokens, usd = sum(u.tokens for u in done) / n, sum(u.cost_usd for u in done) / n
        tokens, usd = (tokens + max(tokens, dear.tokens)) / 2, (usd + max(usd, dear.usd)) / 2
        last = self._ceilings.largest.get("task", Ceiling())  # the last held-out call's ceiling must fit too
        margin = Ceiling(int(last.tokens * 1.5), last.usd * 1.5)  # held-out rows may run longer than those seen
        return calls * tokens + max(0.0, margin.tokens - tokens), calls * usd + max(0.0, margin.usd - usd)

    def _call_with_retries(self, role: str, client: ModelClient, payload: dict[str, Any]) -> Completion:
        attempt = 0
        refused = True  # every attempt so far found nothing listening
        while True:
            ceiling = self._reserve(role, client, payload)  # a retry is a call: it takes a budget slot too
            try:
                return self._attempt(role, client, payload, ceiling)
            except (LMCallError, ModelUnavailableError) as e:
                refused = refused and getattr(e, "unreachable", False)
                if refused and attempt >= self.retry.max_retries:
                    # nothing listened through every retry: the model is gone, and the calls queued behind this
                    # one fail at once instead of each waiting out its own backoff (32 s to fail a run before)
                    gone = ModelUnavailableError(e.message, hint=e.hint)
                    self._remember(role, client, gone)
                    raise gone from e
                delay = self._retry_delay(e, attempt)
                attempt += 1
                with self._lock:
                    self._usage[role].retries += 1
                log.warning("%s call failed (%s); retry %d in %.1f s", role, scrub_text(e.message), attempt, delay)
                if delay > 0:
                    time.sleep(delay)

    def _attempt(self, role: str, client: ModelClient, payload: dict[str, Any], ceiling: Ceiling) -> Completion:
        """One request: counted (success or failure) the moment it ends, and reported through on_call."""
        start = time.monotonic()
        b = self.budget
        deadline = self._started + b.max_seconds if b.max_seconds is not None else None
        try:
            with budget_deadline(deadline):  # a request started near the end gets only the time left
                result = client.complete(
                    payload["messages"],
                    json_schema=payload["json_schema"],
                    max_tokens=payload["max_tokens"],
                    temperature=payload["temperature"],
                )
        except BaseException as e:  # KeyboardInterrupt too: the reserved slot must be released
            self._account(role, start, None, ceiling)
            if isinstance(e, (LMCallError, ModelUnavailableError, PluginError)):  # a plugin client's error too:
                self._remember(role, client, e)  # the task path's only cause ("no error was recorded" before)
            if isinstance(e, Exception):
                self._notify()
            raise
        self._account(role, start, result, ceiling)
        self._notify()
        return result

    def _account(self, role: str, start: float, result: Completion | None, ceiling: Ceiling) -> None:
        with self._lock:
            self._reserved -= 1
            self._sending[role] -= 1
            self._in_flight = Ceiling(self._in_flight.tokens - ceiling.tokens, self._in_flight.usd - ceiling.usd)
            self._freed.notify_all()
            u = self._usage[role]
            u.calls += 1
            u.seconds += time.monotonic() - start
            if result is None:
                u.failed_calls += 1
                return
            u.estimated_calls += int(result.estimated)
            u.prompt_tokens += result.prompt_tokens
            u.completion_tokens += result.completion_tokens
            u.cost_usd += result.cost_usd
            self._ceilings.learn(role, result.prompt_tokens, result.completion_tokens, result.cost_usd)

    def _remember(self, role: str, client: ModelClient, e: CallError | PluginError) -> None:
        with self._lock:
            self._first_error.setdefault(role, e)
            self._last_error[role] = e
            if isinstance(e, ModelUnavailableError):
                self._dead.setdefault(id(client), e)

    def _notify(self) -> None:
        if self.on_call is not None:
            self.on_call(self.usage())

    def _retry_delay(self, e: CallError, attempt: int) -> float:
        return retry_delay(self.retry, self.budget, self.elapsed, e, attempt)


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
