"""A plugin's model client, held to the ModelClient contract at the boundary: what its `complete` raises becomes a
PluginError naming the plugin (not "unexpected error: RuntimeError"), and what it returns must be a Completion with
text and finite, non-negative counts, since the budget adds them up and a negative cost would give money back."""

from __future__ import annotations

import math
from typing import Any

from promptomatix.errors import LMCallError, ModelUnavailableError, PluginError, PromptomatixError
from promptomatix.lm.types import Completion, ModelClient


class PluginClient:
    """Wraps a client a plugin's provider made; other attributes (`worst_cost`, a price hook) pass through."""

    def __init__(self, inner: ModelClient, plugin: str, provider: str) -> None:
        self._inner = inner
        self._what = f"plugin {plugin}: model provider {provider!r}"
        self._plugin = plugin
        self.model = inner.model

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet (copy.copy builds the object without __init__): no endless lookup
            raise AttributeError(name)
        return getattr(self._inner, name)

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> Completion:
        try:
            result = self._inner.complete(messages, **kwargs)
        except (LMCallError, ModelUnavailableError, PromptomatixError):
            raise  # the contract's own errors: retried or reported as the provider's
        except Exception as e:
            from promptomatix.run_guard import one_line

            raise self._error(f"failed in complete(): {one_line(f'{type(e).__name__}: {e}')}") from e
        return self._checked(result)

    def _checked(self, result: Any) -> Completion:
        if not isinstance(result, Completion):
            raise self._error(f"returned {type(result).__name__} from complete(), not a Completion")
        if not isinstance(result.text, str):
            raise self._error(f"returned a Completion whose text is {type(result.text).__name__}, not str")
        for name in ("prompt_tokens", "completion_tokens", "cost_usd"):
            value = getattr(result, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise self._error(f"returned {name}={value!r}; counts and cost must be finite numbers >= 0")
        return result

    def _error(self, what: str) -> PluginError:
        from promptomatix.plugins.manager import fix_hint

        return PluginError(f"{self._what} {what}", hint=fix_hint(self._plugin), plugin=self._plugin)
