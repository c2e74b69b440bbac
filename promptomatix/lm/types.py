"""The small protocol that pipeline stages use to talk to a model, so they never see which model it is."""

from __future__ import annotations

from typing import Any, Protocol


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
