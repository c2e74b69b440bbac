"""A role's model that refuses further calls once the run knows they are pointless.

The dspy backend scores the initial program beside the optimizer. When every call of that scoring failed, the meta
backend's rule applies (`run_guard.require_answers`: the task model could not answer, stop), but the optimizer went
on calling the same failing model from its own thread for minutes. Stopping this wrapper ends those calls at once.
"""

from __future__ import annotations

from typing import Any

from promptomatix.errors import BudgetExceeded, BudgetStop
from promptomatix.lm.types import Completion


class StoppableLM:
    """Wraps a RoleLM; after `stop(why)` every call raises BudgetStop (which DSPy does not swallow as a failed
    row) without a request. Other attributes pass through."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._why: BaseException | None = None

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":  # not set yet: no endless lookup
            raise AttributeError(name)
        return getattr(self._inner, name)

    def stop(self, why: BaseException) -> None:
        self._why = why

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> Completion:
        if self._why is not None:
            raise BudgetStop(BudgetExceeded(f"stopped: {self._why}", limit="calls"))
        result: Completion = self._inner.complete(messages, **kwargs)
        return result

    def chat(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        return self.complete(messages, **kwargs).text
