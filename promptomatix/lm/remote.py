"""Any litellm/DSPy model string (openai/…, anthropic/…, ollama_chat/…, an OpenAI-compatible api_base).

litellm is imported lazily and its errors are mapped here, once, to our typed errors (`raise … from e`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from promptomatix.errors import LMCallError, ModelUnavailableError
from promptomatix.lm.fake import Completion

_TRANSIENT = {
    "RateLimitError",
    "APIConnectionError",
    "Timeout",
    "ServiceUnavailableError",
    "InternalServerError",
    "APIError",
}
_FATAL = {"AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError"}


@functools.cache
def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm


def _key_env(model: str) -> str:
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return f"{provider.upper()}_API_KEY"


class RemoteClient:
    """A ModelClient over litellm. The key is held in memory only, never in settings that get persisted."""

    def __init__(self, model: str, *, api_key: str | None = None, api_base: str | None = None, **extra: Any):
        self.model = model
        self._api_key = api_key
        self.api_base = api_base
        self.extra = extra

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        litellm = _litellm()
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, **self.extra}
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        if temperature is not None:
            kwargs["temperature"] = temperature
        if self._api_key:
            kwargs["api_key"] = self._api_key
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": json_schema},
            }
        try:
            resp = litellm.completion(**kwargs)
        except Exception as e:
            raise self._wrap(e) from e
        usage = getattr(resp, "usage", None)
        try:
            cost = float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:
            cost = 0.0  # unknown price (local servers, new models): count tokens, not dollars
        return Completion(
            text=resp.choices[0].message.content or "",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cost_usd=cost,
            model=self.model,
        )

    def _wrap(self, e: Exception) -> Exception:
        name = type(e).__name__
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else name
        if name == "AuthenticationError":
            return ModelUnavailableError(
                f"{self.model}: authentication failed ({first})",
                hint=f"set {_key_env(self.model)} or pass --api-key",
            )
        if name in _FATAL:
            return LMCallError(f"{self.model}: {name}: {first}", retryable=False)
        if name in _TRANSIENT or "timeout" in name.lower() or "connection" in name.lower():
            return LMCallError(f"{self.model}: {name}: {first}", retryable=True)
        return LMCallError(f"{self.model}: {name}: {first}", retryable=False)
