"""The `simple_meta_prompt` backend: an OPRO/ProTeGi-style refinement loop with real selection.

Each round the teacher sees the task, the best prompts so far with their scores, the current best's failures on
a train minibatch (with metric feedback) and any human feedback, and proposes candidates; procedural strategies
add demo sets, drop lines and join the parts of kept candidates (instructions × demos, as MIPROv2 does).
Candidates are scored on the train minibatch first (without their own demo rows); only promising ones get the
full valid split. The finalists are then confirmed on the train rows against the initial prompt on the same
rows (see selection.py). The initial prompt is always in the pool, so the result never scores below it on
valid. Budget exhaustion stops the loop, keeping the best. The run's steps are in meta_loop.py (`MetaRun`), the
concurrent scoring of a round and of the confirmation in rounds.py.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from promptomatix.backends.base import BackendResult, RunContext
from promptomatix.backends.meta_loop import MetaRun
from promptomatix.backends.plan import apply_plan, no_search_error, plan_meta
from promptomatix.backends.prompt import PromptCandidate, PromptProgram
from promptomatix.backends.rounds import Scored as _Scored
from promptomatix.backends.rounds import confirm_each, confirmed_reason
from promptomatix.backends.slots import SlotProposer
from promptomatix.backends.strategies import ProposalContext, StrategyRegistry
from promptomatix.errors import BudgetExceeded

SearchType = Literal["quick", "moderate", "heavy"]
#: Round 1 starts with the demo set (one example per label): it is the candidate that wins most often on small
#: models (benchmarks/RESULTS.md §3e, §7), and a plan cut to fit a small budget keeps only the first slots.
DEFAULT_STRATEGIES = (
    "add_demos", "rewrite_from_failures", "drop_line", "format_line",
    "add_demos", "rephrase", "combine", "drop_line",
    "add_format", "add_demos", "compress", "combine",
)  # fmt: skip


class MetaSettings(BaseModel):
    """Search hyperparameters. Presets set them; explicit values override."""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(default=2, ge=0)
    candidates_per_round: int = Field(default=3, ge=1)
    minibatch_size: int = Field(default=6, ge=1)
    patience: int = Field(default=2, ge=1)
    top_k: int = Field(default=3, ge=1)
    max_demos: int = Field(default=8, ge=0)  # cap per candidate; up to this many labels get one demo each
    teacher_temperature: float = Field(default=0.7, ge=0, le=2)
    confirm_top_k: int = Field(default=3, ge=0)  # finalists re-scored on train rows; 0 selects on valid alone
    #: Rounds take the next `candidates_per_round` names in turn; a name may repeat to get more slots.
    strategies: list[str] = Field(default_factory=lambda: list(DEFAULT_STRATEGIES))
    #: These take a slot in every round before the rotation (user templates from `--meta-prompt` go here).
    pinned_strategies: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some_strategy(self) -> MetaSettings:
        if not self.strategies and not self.pinned_strategies:
            raise ValueError("at least one meta-prompt strategy is needed")
        return self

    @classmethod
    def preset(cls, search_type: SearchType = "quick", **overrides: Any) -> MetaSettings:
        presets = {
            "quick": {"rounds": 3, "candidates_per_round": 4, "minibatch_size": 6, "patience": 2},
            "moderate": {"rounds": 4, "candidates_per_round": 4, "minibatch_size": 10, "patience": 2},
            "heavy": {"rounds": 8, "candidates_per_round": 6, "minibatch_size": 16, "patience": 3},
        }
        key = search_type.replace("_search", "")
        if key not in presets:
            from promptomatix.errors import ConfigurationError

            raise ConfigurationError(f"unknown search type '{search_type}'", hint="use quick, moderate or heavy")
        return cls(**{**presets[key], **{k: v for k, v in overrides.items() if v is not None}})

    def round_calls(self, n_train: int, n_valid: int) -> int:
        """Upper bound on one round: teacher calls, minibatches (the best's and each candidate's), valid evals."""
        m = min(self.minibatch_size, n_train or n_valid or 1)
        k = self.candidates_per_round
        return k + (k + 1) * m + k * n_valid

    def confirm_calls(self, n_train: int) -> int:
        """Upper bound on the confirmation: the finalists (the pool minus the initial) and the initial on train."""
        return (min(self.confirm_top_k, self.top_k - 1) + 1) * n_train if self.confirm_top_k else 0

    def estimate_calls(self, n_train: int, n_valid: int) -> int:
        """Upper bound on LM calls: baseline + rounds + the confirmation of the finalists on the train rows."""
        return n_valid + self.rounds * self.round_calls(n_train, n_valid) + self.confirm_calls(n_train)


class MetaPromptOptimizer:
    """`compile(ctx, initial, data)` → BackendResult. Never mutates `initial`."""

    name = "simple_meta_prompt"

    def __init__(self, settings: MetaSettings | None = None, registry: StrategyRegistry | None = None) -> None:
        self.settings = settings or MetaSettings()
        self.registry = registry or StrategyRegistry.default()
        for name in [*self.settings.strategies, *self.settings.pinned_strategies]:
            self.registry.get(name)  # fail fast on a typo

    def compile(self, ctx: RunContext, initial: PromptCandidate, data: Any) -> BackendResult:
        """Fit the search to the budget, score the initial prompt, play the rounds and confirm the finalists.

        The steps live on `MetaRun` (meta_loop.py); the budget handling stays here, in one place: a budget stop
        during the rounds or the confirmation keeps the best so far, one during the baseline propagates."""
        per_row = ctx.metrics.calls_per_row(ctx.spec.task_type)
        plan = plan_meta(self.settings, len(data.train), len(data.valid), ctx.boundary.remaining_calls(), per_row)
        if plan.rounds == 0 and self.settings.rounds:
            # say so before the first call; a budget short even of the baseline is the same case (and with a warm
            # cache the baseline would pass for free and the run would return the initial prompt unsearched)
            left = ctx.boundary.remaining_calls(clamp=False)
            shown = ctx.boundary.budget.shown("max_calls")
            raise no_search_error(plan, max_calls=None if shown is None else int(shown), left=left)
        run = MetaRun.start(ctx, apply_plan(self.settings, plan), plan, initial, data)
        run.score_baseline()  # BudgetExceeded here propagates: without a baseline there is nothing to return
        try:
            run.play_rounds(self.registry, self._proposer)
            run.flush()
            if run.s.confirm_top_k and data.valid and run.train and run.rounds_done and run.confirm_fits():
                run.confirm(self._confirm)
            elif (plan.valid_evidence or run.single) and run.rounds_done:
                run.judge_on_valid()
        except BudgetExceeded as e:
            run.stop_reason = f"budget: {e.message}"
            ctx.emit("stopped", f"budget reached, keeping the best so far ({e.message})")
        finally:
            run.flush()  # a Ctrl-C keeps the last finished round too
        run.prefer_less_to_read()
        return run.result(self.name)

    def _confirm(
        self,
        ctx: RunContext,
        pool: list[_Scored],
        base: _Scored,
        train: list[dict[str, Any]],
        top_k: int,
        program: Callable[[PromptCandidate], PromptProgram],
        penalty: Callable[[PromptCandidate], float],
    ) -> tuple[_Scored, str]:
        """Re-score the finalists on the train rows (minus their own demos) and keep the one that beats the
        initial prompt by most on valid + those rows, compared on exactly the same rows; else the initial.
        Finalists within one row's worth of the top margin are a tie, and the tie goes to the instructions
        closest to the user's: a small teacher's nonsense rewrite must not win on a word of length penalty."""
        floor = base.valid_penalized or 0.0
        finalists = [p for p in pool if p is not base and (p.valid_penalized or 0.0) >= floor]
        finalists = finalists[:top_k]
        if not finalists:
            return base, "no candidate reached the initial prompt's valid score"
        ctx.emit("confirm", f"confirming {len(finalists)} finalists on {len(train)} train rows")
        margins: list[tuple[_Scored, float, int]] = []
        try:
            for won in self._confirm_each(ctx, finalists, base, train, program, penalty):
                margins.append(won)  # kept as they come: a budget stop keeps the finalists already confirmed
        except BudgetExceeded as e:
            if not margins:  # a finalist confirmed before the stop lost its confirmation: never fall back to it
                unconfirmed = [f for f in finalists if f.confirm is None]
                if not unconfirmed:
                    return base, f"budget: {e.message}; no confirmed finalist beat the initial prompt"
                return unconfirmed[0], f"budget: {e.message}; chosen on valid alone, before the confirmation"
        if not margins:
            return base, "confirmation: no finalist beat the initial prompt on the train rows too"
        top = max(m for _, m, _ in margins)
        tied = [(f, m, n) for f, m, n in margins if m >= top - 1.0 / max(1, n) - 1e-9]
        words = base.candidate.instructions.split()
        chosen, margin, rows = max(tied, key=lambda t: (_similarity(words, t[0].candidate.instructions.split()), t[1]))
        return chosen, confirmed_reason(chosen, margin, rows)

    _confirm_each = staticmethod(confirm_each)  # a hook: tests stop the confirmation here

    def _proposer(self, names: list[str], pctx: ProposalContext) -> SlotProposer:
        """The round's slots proposed (slots.py): at once, an empty slot trying other strategies."""
        return SlotProposer(self.registry, self.settings.strategies, names, pctx)


def _similarity(a: list[str], b: list[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
