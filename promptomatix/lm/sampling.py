"""What each role's calls send: a bounded completion and a temperature (the run's settings over the caller's)."""

from __future__ import annotations

from dataclasses import dataclass

#: output tokens per completion when the caller names none: a task answer and a judge verdict are short; the
#: teacher writes specs, rewrites and batches of examples. A runaway small model stops here, not at the context.
DEFAULT_MAX_TOKENS = {"task": 256, "teacher": 768, "judge": 256}


@dataclass(frozen=True)
class RoleSettings:
    """The run's sampling settings for one role. None: the caller's value (else the role default / 0.0)."""

    max_tokens: int | None = None  # a cap on each completion; also the default when the caller names none
    temperature: float | None = None  # replaces the caller's temperature for every call of the role


def resolve_sampling(
    role: str, settings: RoleSettings, max_tokens: int | None, temperature: float | None
) -> tuple[int, float]:
    """What is actually sent: never an unbounded completion, and a deterministic default temperature."""
    cap = settings.max_tokens
    tokens = max_tokens or cap or DEFAULT_MAX_TOKENS.get(role, DEFAULT_MAX_TOKENS["task"])
    if cap:
        tokens = min(tokens, cap)
    temp = settings.temperature if settings.temperature is not None else temperature
    return int(tokens), float(temp) if temp is not None else 0.0
