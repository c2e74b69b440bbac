"""Reading a provider's answer into a Completion: its text, why it ended, and token counts the budget can trust.

A server's `usage` is taken only when it is readable: whole numbers >= 0 that a call of this size can produce. A
missing, negative, wrongly typed or absurd count (some proxies leave `usage` out; a broken one sends -100005 or
2e15) is replaced by an estimate from the request and the answer, and the Completion says so (`estimated`): a
`--max-total-tokens` or `--max-usd` limit must keep binding, and a run must never report 0 tokens for paid calls.
"""

from __future__ import annotations

import math
from typing import Any

from promptomatix.lm.ceiling import prompt_bound
from promptomatix.lm.types import Completion

#: about this many characters make one token of English text (the fallback when litellm cannot count)
CHARS_PER_TOKEN = 4
#: a count beyond this many times what the call can produce (plus SLACK) comes from a broken server
ABSURD_FACTOR = 4
ABSURD_SLACK = 4096


def readable_count(value: Any) -> int | None:
    """`value` as a token count, or None when it is not one (missing, bool, negative, fractional, not finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def server_counts(
    usage: Any, messages: list[dict[str, Any]], text: str, max_tokens: int | None
) -> tuple[int, int] | None:
    """The server's (prompt, completion) tokens when both are readable and possible for this call, else None."""
    if usage is None:
        return None
    prompt = readable_count(_field(usage, "prompt_tokens"))
    answer = readable_count(_field(usage, "completion_tokens"))
    if prompt is None or answer is None:
        return None
    most_prompt = ABSURD_FACTOR * prompt_bound(messages) + ABSURD_SLACK
    most_answer = ABSURD_FACTOR * max(int(max_tokens or 0), len(text.encode("utf-8"))) + ABSURD_SLACK
    if prompt > most_prompt or answer > most_answer:
        return None
    if prompt == 0 and answer == 0 and (text or messages):
        return None  # "usage": {} or zeros for a real exchange: nothing was counted
    return prompt, answer


def estimate_counts(litellm: Any, model: str, messages: list[dict[str, Any]], text: str) -> tuple[int, int]:
    """(prompt, completion) tokens by litellm's tokenizer for the model, else about 4 characters a token."""
    try:
        prompt = int(litellm.token_counter(model=model, messages=messages))
        answer = int(litellm.token_counter(model=model, text=text)) if text else 0
        if prompt >= 0 and answer >= 0:
            return prompt, answer
    except Exception:  # no tokenizer for the model, or none loadable offline: count characters
        pass
    chars = sum(len(str(m.get("content", ""))) for m in messages)
    return max(1, math.ceil(chars / CHARS_PER_TOKEN)), math.ceil(len(text) / CHARS_PER_TOKEN)


def list_price(litellm: Any, model: str, prompt: int, answer: int) -> float:
    """USD for these counts at litellm's list price; 0.0 when the model has none (local servers, new models)."""
    try:
        cost = float(sum(litellm.cost_per_token(model=model, prompt_tokens=prompt, completion_tokens=answer)))
    except Exception:
        return 0.0
    return cost if math.isfinite(cost) and cost >= 0 else 0.0


def read_completion(
    litellm: Any, resp: Any, *, model: str, text: str, messages: list[dict[str, Any]], max_tokens: int | None
) -> Completion:
    """The Completion for a parsed answer `resp` whose text is `text`: checked counts, else estimated ones."""
    finish = _finish_reason(resp)
    counts = server_counts(getattr(resp, "usage", None), messages, text, max_tokens)
    if counts is None:
        prompt, answer = estimate_counts(litellm, model, messages, text)
        cost = list_price(litellm, model, prompt, answer)
        return Completion(text, prompt, answer, cost, model, estimated=True, finish_reason=finish)
    try:
        cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
    except Exception:
        cost = 0.0  # unknown price (local servers, new models): count tokens, not dollars
    if not math.isfinite(cost) or cost < 0:
        cost = list_price(litellm, model, *counts)
    return Completion(text, counts[0], counts[1], cost, model, finish_reason=finish)


def _field(usage: Any, name: str) -> Any:
    return usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)


def _finish_reason(resp: Any) -> str | None:
    try:
        reason = resp.choices[0].finish_reason
    except (AttributeError, IndexError, TypeError):
        return None
    return reason if isinstance(reason, str) else None
