"""What a run may spend and what it spent: the LM boundary's limits and counts, kept apart from the boundary
so sessions, reports and the batch summary can read them without the call machinery."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Budget(BaseModel):
    """Limits for one run; None means unlimited. Cached (replayed) calls are free and never count."""

    model_config = ConfigDict(extra="forbid")

    max_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)  # total tokens of the run (RunConfig.max_total_tokens)
    max_usd: float | None = Field(default=None, ge=0)
    max_seconds: float | None = Field(default=None, ge=0)
    #: calls held back for the final held-out scoring: from max_calls, and (at the task calls' mean size so far)
    #: from max_tokens and max_usd, so a token or dollar limit cannot leave the verdict untested either
    reserved_calls: int = Field(default=0, ge=0)
    #: a resumed run: what it spent before it stopped, by limit name, already taken off the limits above; added
    #: back in what messages show, so they name the limits the user gave (run/carried.py)
    carried: dict[str, float] = Field(default_factory=dict)

    def shown(self, name: str) -> float | None:
        """Limit `name` (e.g. "max_calls") as the user gave it; None when unlimited."""
        limit = getattr(self, name)
        return None if limit is None else limit + self.carried.get(name, 0)


class RoleUsage(BaseModel):
    """Per-role counts. `calls` counts every request sent (each retry is one); `failed_calls` and `retries` are
    subcounts of it; `refused_calls` were never sent because the model had already shown it cannot answer;
    `estimated_calls` (of `calls`) answered without readable token counts, so their tokens (and cost) are estimates
    from the text rather than the server's figures."""

    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    retries: int = 0
    refused_calls: int = 0
    estimated_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: RoleUsage) -> RoleUsage:
        return RoleUsage(**{k: getattr(self, k) + getattr(other, k) for k in RoleUsage.model_fields})


class UsageReport(BaseModel):
    by_role: dict[str, RoleUsage]
    total: RoleUsage
    elapsed_seconds: float
    models: dict[str, str]
