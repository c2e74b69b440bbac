"""The most one call can cost, known before it is sent, so a token or dollar limit is never overshot.

A call's answer is capped by its max_tokens. Its prompt is bounded by its size in UTF-8 bytes plus the chat
template's framing: byte-level BPE tokenizers (GPT, Llama 3, Qwen) and SentencePiece with byte fallback never
make more tokens than bytes. That is about four times an English prompt's real count, so the bound binds only for
the last call or two of a budget. Its price comes from the client when it knows one (`worst_cost`: litellm's price
list), else from the dearest token the role's calls have cost so far (a model without a list price is priced from
its answers, so its first call is not bounded in dollars). The boundary reserves this ceiling for every call in
flight and releases it when the call is counted, so parallel calls cannot overshoot together either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptomatix.lm.usage import Budget

#: tokens a chat template adds around each message (role markers, separators)
MESSAGE_FRAMING_TOKENS = 8
#: tokens a template may add to a call (a default system prompt, the assistant's opening)
CALL_FRAMING_TOKENS = 32


@dataclass(frozen=True)
class Ceiling:
    tokens: int = 0
    usd: float = 0.0


def prompt_bound(messages: list[dict[str, Any]]) -> int:
    """An upper bound on the prompt's tokens: its bytes, and the template's framing."""
    body = sum(len(str(m.get("content", "")).encode("utf-8")) + MESSAGE_FRAMING_TOKENS for m in messages)
    return body + CALL_FRAMING_TOKENS


@dataclass
class CeilingEstimator:
    """Ceilings of calls, and what the role's calls have shown: the dearest token and the largest ceiling. Not
    locked: the boundary calls it under its own lock."""

    usd_per_token: dict[str, float] = field(default_factory=dict)
    largest: dict[str, Ceiling] = field(default_factory=dict)
    dearest: dict[str, Ceiling] = field(default_factory=dict)  # the most one answered call of the role took

    def ceiling(self, role: str, client: Any, payload: dict[str, Any], *, priced: bool) -> Ceiling:
        """The most this call can take. `priced`: a dollar limit is set (only then is a price looked up)."""
        prompt, answer = prompt_bound(payload["messages"]), int(payload.get("max_tokens") or 0)
        c = Ceiling(prompt + answer, self._usd(role, client, prompt, answer) if priced else 0.0)
        top = self.largest.get(role, Ceiling())
        self.largest[role] = Ceiling(max(top.tokens, c.tokens), max(top.usd, c.usd))
        return c

    def learn(self, role: str, prompt_tokens: int, completion_tokens: int, usd: float) -> None:
        tokens = prompt_tokens + completion_tokens
        top = self.dearest.get(role, Ceiling())
        self.dearest[role] = Ceiling(max(top.tokens, tokens), max(top.usd, usd))
        if tokens and usd:
            self.usd_per_token[role] = max(self.usd_per_token.get(role, 0.0), usd / tokens)

    def _usd(self, role: str, client: Any, prompt: int, answer: int) -> float:
        price = getattr(client, "worst_cost", None)
        if callable(price):
            try:
                known = price(prompt, answer)
            except Exception:  # a plugin's price hook must not fail the call it is asked about
                known = None
            if known is not None:
                return float(known)
        return (prompt + answer) * self.usd_per_token.get(role, 0.0)


def limit_reason(
    b: Budget, used: Ceiling, in_flight: Ceiling, c: Ceiling, held: tuple[float, float]
) -> tuple[str, str] | None:
    """Why a call of ceiling `c` does not fit the token or dollar limit (the limit, a message), or None. `used`:
    what the counted calls took; `held`: tokens and dollars held back for the final scoring."""
    ct, cu = b.carried.get("max_tokens", 0), b.carried.get("max_usd", 0.0)  # a resumed run's earlier spending
    first = not used.tokens and not in_flight.tokens
    if b.max_tokens is not None and used.tokens + in_flight.tokens + c.tokens > b.max_tokens - held[0]:
        if first and not ct:
            return "tokens", (f"budget of {b.max_tokens} tokens is too small for one call (its prompt and "
                              f"max_tokens can take {c.tokens})")  # fmt: skip
        return "tokens", (f"budget of {b.max_tokens + ct:.0f} tokens reached: {used.tokens + ct:.0f} used, "
                          f"{_held(held[0])}the next call can take up to {c.tokens}")  # fmt: skip
    if b.max_usd is not None and used.usd + in_flight.usd + c.usd > b.max_usd - held[1]:
        if first and not cu:
            return "usd", f"budget of ${b.max_usd:.4f} is too small for one call (it can cost ${c.usd:.4f})"
        spent = f"${used.usd + cu:.4f} used, {_held(held[1], '$')}the next call can cost up to ${c.usd:.4f}"
        return "usd", f"budget of ${b.max_usd + cu:.4f} reached: {spent}"
    return None


def _held(amount: float, unit: str = "") -> str:
    if not amount:
        return ""
    return f"about {unit}{amount:.4f} held back for the final scoring, " if unit else (
        f"about {amount:.0f} held back for the final scoring, ")  # fmt: skip
