"""The example plugin's backend, `suffix_search`: the initial prompt plus each of a few suffixes, scored on the valid
rows; the best (penalized) is kept.

In its own module because its settings model needs pydantic, which the CLI does not import to answer `--help`: the
plugin's `register_backends` imports this module when the backend registry is first built.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class SuffixSettings(BaseModel):
    suffixes: list[str] = Field(default_factory=lambda: ["Be brief.", "Answer with exactly yes or no."])


class SuffixSearch:
    """Score the initial prompt and the prompt plus each suffix on the valid rows; keep the best (penalized)."""

    name = "suffix_search"

    def __init__(self, settings: SuffixSettings) -> None:
        self.settings = settings

    def estimate_calls(self, n_train: int, n_valid: int) -> int:
        return (1 + len(self.settings.suffixes)) * (n_valid or n_train)

    def compile(self, ctx: Any, initial: Any, data: Any) -> Any:
        from promptomatix.backends.base import BackendResult, CandidateRecord
        from promptomatix.backends.prompt import PromptProgram

        rows = list(data.valid) or list(data.train)
        variants = [initial] + [
            initial.model_copy(update={"instructions": f"{initial.instructions.rstrip()}\n{s}", "origin": "suffix"})
            for s in self.settings.suffixes
        ]
        scored = []
        for i, cand in enumerate(variants):
            program = PromptProgram(cand, ctx.spec, ctx.task_lm)
            raw = ctx.evaluate(program, rows).primary
            penalized = raw * ctx.metrics.penalty(cand.penalty_text(ctx.spec))
            scored.append((penalized, raw, i, cand, program))
        best = max(scored, key=lambda s: (s[0], -s[2]))
        first = scored[0]
        records = [
            CandidateRecord(id=i, round=0 if i == 0 else 1, origin=c.origin, prompt=c.render(ctx.spec),
                            instructions=c.instructions, valid_raw=raw, valid_penalized=pen)
            for pen, raw, i, c, _ in scored
        ]  # fmt: skip
        return BackendResult(
            backend=self.name,
            prompt=best[3].render(ctx.spec),
            instructions=best[3].instructions,
            demos=list(best[3].demos),
            format_line=best[3].format_line,
            valid_raw=best[1],
            valid_penalized=best[0],
            initial_prompt=initial.render(ctx.spec),
            initial_valid_raw=first[1],
            initial_valid_penalized=first[0],
            candidates=records,
            rounds_completed=1,
            settings=self.settings.model_dump(),
        ).with_predictors(best[4], first[4])
