"""The model-facing types: what a client returns (Completion), what a client is (ModelClient, what a model plugin
provides), and the role-bound ChatModel the pipeline stages talk to, so they never see which model it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class Completion:
    """What one model call returned, with the numbers the boundary accounts for. `estimated`: the server sent no
    readable token counts, so they were estimated from the text (a limit must still bind on them);
    `finish_reason`: why the answer ended, as the server said ("stop", "length", ...), None when unknown."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    estimated: bool = False
    finish_reason: str | None = None


class ModelClient(Protocol):
    """One model behind a model string (local GGUF, litellm provider, a plugin's client). The LM boundary adds
    budgets, retries and caching around `complete`; a client only makes the call."""

    model: str

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion: ...


class ChatModel(Protocol):
    """A model bound to a role of a run (task, teacher, judge). Every call goes through the LM boundary."""

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        cache: bool = True,
    ) -> str:
        """Send OpenAI-style messages, return the assistant text (JSON text when json_schema is given)."""
        ...
