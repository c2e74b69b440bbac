"""The most one call can cost, known before it is sent, so a token or dollar limit is never overshot.

A call's answer is capped by its max_tokens; its prompt is measured here (characters, converted at the most
tokens per character the role's calls have shown so far, or a cautious default before any). Its price comes from
the client when it knows one (`worst_cost`: litellm's price list for provider models), else from the dearest token
the role's calls have cost so far. The boundary reserves this ceiling for every call in flight and releases it when
the call is counted, so parallel calls cannot overshoot together either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: tokens per character before a role has made a call: English runs near 0.25, code and CJK text higher
DEFAULT_TOKENS_PER_CHAR = 0.5
#: characters a chat message's role and framing add
MESSAGE_OVERHEAD_CHARS = 16


@dataclass(frozen=True)
class Ceiling:
    tokens: int = 0
    usd: float = 0.0


def prompt_chars(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", ""))) + MESSAGE_OVERHEAD_CHARS for m in messages)


@dataclass
class CeilingEstimator:
    """Learns each role's tokens per character and dollars per token from the calls it is shown. Not locked:
    the boundary calls it under its own lock."""

    tokens_per_char: dict[str, float] = field(default_factory=dict)
    usd_per_token: dict[str, float] = field(default_factory=dict)

    def ceiling(self, role: str, client: Any, payload: dict[str, Any], *, priced: bool) -> Ceiling:
        """The most this call can take. `priced`: a dollar limit is set (only then is a price looked up)."""
        ratio = self.tokens_per_char.get(role, DEFAULT_TOKENS_PER_CHAR)
        prompt = math.ceil(prompt_chars(payload["messages"]) * ratio)
        answer = int(payload.get("max_tokens") or 0)
        if not priced:
            return Ceiling(prompt + answer, 0.0)
        return Ceiling(prompt + answer, self._usd(role, client, prompt, answer))

    def typical(self, role: str, client: Any, prompt_tokens: float, answer: int, *, priced: bool) -> Ceiling:
        """The ceiling of a call whose prompt has `prompt_tokens` (a mean), with the margin the estimate takes."""
        ratio = self.tokens_per_char.get(role)
        prompt = math.ceil(prompt_tokens * 1.25) if ratio is None else math.ceil(prompt_tokens * 1.1)
        return Ceiling(prompt + answer, self._usd(role, client, prompt, answer) if priced else 0.0)

    def learn(self, role: str, payload: dict[str, Any], prompt_tokens: int, completion_tokens: int, usd: float) -> None:
        chars = prompt_chars(payload["messages"])
        if chars and prompt_tokens:
            self.tokens_per_char[role] = max(self.tokens_per_char.get(role, 0.0), prompt_tokens / chars)
        tokens = prompt_tokens + completion_tokens
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
