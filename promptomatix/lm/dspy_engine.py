"""Bridge DSPy 3.4's engine interface to our LM boundary, so DSPy optimizers' calls are counted and budgeted too.

`dspy.LM(model, engine=BoundaryEngine(role_lm))` sends each request here; we turn it into chat messages (plus the
JSON schema that DSPy's JSONAdapter asks for, which local models turn into a llama.cpp grammar) and back.
DSPy's own cache is turned off: the boundary caches.
"""

from __future__ import annotations

from typing import Any

from promptomatix.errors import BudgetExceeded, BudgetStop
from promptomatix.lm.boundary import RoleLM


class BoundaryEngine:
    """A DSPy Engine (complete/stream/close). Declares JSON-schema support so JSONAdapter sends the schema."""

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "stop"})

    def __init__(self, role_lm: RoleLM) -> None:
        self.role_lm = role_lm

    def complete(self, request: Any) -> Any:
        from dspy.clients.engines.base import validate_request
        from dspy.lm15 import Message, Response, TextPart, Usage

        validate_request(request)
        messages: list[dict[str, str]] = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        cfg = request.config
        schema = None
        rf = cfg.response_format
        if rf and rf.get("type") == "json_schema":
            schema = rf.get("schema")
        elif rf and rf.get("type") == "json_object":
            schema = {"type": "object"}
        try:
            out = self.role_lm.complete(
                messages, json_schema=schema, max_tokens=cfg.max_tokens, temperature=cfg.temperature
            )
        except BudgetExceeded as e:
            raise BudgetStop(e) from e
        return Response(
            id=None,
            model=out.model or self.role_lm.model,
            message=Message.assistant([TextPart(out.text)]),
            finish_reason="stop",
            usage=Usage(
                input_tokens=out.prompt_tokens,
                output_tokens=out.completion_tokens,
                total_tokens=out.prompt_tokens + out.completion_tokens,
            ),
        )

    def stream(self, request: Any) -> Any:
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


def make_dspy_lm(role_lm: RoleLM, *, temperature: float = 0.0, max_tokens: int = 256) -> Any:
    """A dspy.LM whose every call goes through the run's boundary (no DSPy cache: ours is the one)."""
    import dspy

    return dspy.LM(
        f"promptomatix/{role_lm.role}",
        engine=BoundaryEngine(role_lm),
        cache=False,
        temperature=temperature,
        max_tokens=max_tokens,
        num_retries=0,
    )
