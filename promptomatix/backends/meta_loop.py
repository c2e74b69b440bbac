"""One run of the meta backend's search (`MetaPromptOptimizer.compile`), step by step.

Why a state object: the baseline, each round and the confirmation all read and move the same things (the kept
pool, the best, the rounds without improvement, the checkpoints still to write), and the run's one rng must be
drawn in a fixed order (each round's minibatch, then its proposal rng) for a seed to give the same run. Keeping
them on `MetaRun` lets each step be a short method while `compile` keeps the control flow and the budget handling.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptomatix.backends.base import BackendResult, CandidateRecord, RunContext, selection_score
from promptomatix.backends.prompt import PromptCandidate, PromptProgram
from promptomatix.backends.rounds import Proposal, Round, Scored, play_round
from promptomatix.backends.selection import EVIDENCE_P, evidence
from promptomatix.backends.strategies import ProposalContext, StrategyRegistry
from promptomatix.metrics.pareto import approx_tokens
from promptomatix.run_guard import require_answers

if TYPE_CHECKING:
    from promptomatix.backends.meta import MetaSettings
    from promptomatix.backends.plan import MetaPlan
    from promptomatix.task.models import TaskSpec

Proposer = Callable[[list[int], list[dict[str, Any]] | None], dict[int, Proposal]]  # slots, failures
ProposerFor = Callable[[list[str], ProposalContext], Proposer]  # the optimizer's `_proposer`: names, context
Confirm = Callable[..., tuple[Scored, str]]


@dataclass(eq=False)
class MetaRun:
    """What one `compile` carries from the baseline to the result. `s` is the settings fitted to `plan`."""

    ctx: RunContext
    spec: TaskSpec
    s: MetaSettings
    plan: MetaPlan
    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    rng: random.Random  # seeded once per run; its draws must keep their order (see the module docstring)
    base: Scored
    best: Scored
    pool: list[Scored] = field(default_factory=list)  # the top_k kept, best first, always with the initial prompt
    tried: list[Scored] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    stale: int = 0
    rounds_done: int = 0
    stop_reason: str = "completed"
    single: bool = False  # rounds of one candidate on the confirmation's calls, since no finalist needed it (`affords`)
    single_from: int = 0  # the first of them
    pending: list[Callable[[], None]] = field(default_factory=list)  # checkpoints not written yet

    @classmethod
    def start(cls, ctx: RunContext, s: MetaSettings, plan: MetaPlan, initial: PromptCandidate, data: Any) -> MetaRun:
        """The run's rows and its initial prompt (a copy: `initial` is never mutated); no call is made yet."""
        spec = ctx.spec
        rng = random.Random(ctx.seed)
        train, valid = list(data.train), list(data.valid)
        if not valid:  # select on held-back train rows, so demos are never scored against themselves
            train, valid = (train[: len(train) // 2], train[len(train) // 2 :]) if len(train) >= 4 else ([], train)
        base = Scored(0, 0, initial.model_copy(update={"origin": "initial"}))
        run = cls(ctx, spec, s, plan, train, valid, rng, base, best=base)
        run.seen.add(base.candidate.key())
        return run

    def program(self, c: PromptCandidate) -> PromptProgram:
        return PromptProgram(c, self.spec, self.ctx.task_lm)

    def penalty(self, c: PromptCandidate) -> float:
        return self.ctx.metrics.penalty(c.penalty_text(self.spec))

    def score_valid(self, sc: Scored, pool: Executor | None = None) -> None:
        """Score a candidate on the valid split: what candidates are kept and ranked by."""
        report = self.ctx.evaluate(self.program(sc.candidate), self.valid, pool=pool, ci=False)
        sc.valid_report = report
        sc.valid_raw = selection_score(report)
        sc.valid_penalized = sc.valid_raw * self.penalty(sc.candidate)

    def score_baseline(self) -> None:
        """Say the plan and score the initial prompt on valid: every candidate must beat it, and it is the result
        if none does. A BudgetExceeded here propagates: without a baseline there is nothing to return."""
        ctx, base = self.ctx, self.base
        for line in self.plan.describe():
            ctx.emit("plan", line, total_rounds=self.s.rounds)
        ctx.emit("baseline", f"scoring the initial prompt on {len(self.valid)} valid rows", total_rounds=self.s.rounds)
        self.score_valid(base)
        require_answers(base.valid_report, ctx.boundary, "scoring the initial prompt")
        # A checkpoint is written while the next round's first calls are in flight (it is a session write on the
        # path between rounds otherwise); a Ctrl-C before round 1 still keeps the measured baseline.
        self.pending = [functools.partial(ctx.save_progress, _checkpoint(0, base, base))]
        self.pool.append(base)
        self.tried.append(base)
        self.best = base
        ctx.emit("baseline", f"initial valid score {base.valid_penalized:.3f}", best_score=base.valid_penalized)

    def flush(self) -> None:
        """Write the queued checkpoints, oldest first."""
        while self.pending:
            self.pending.pop(0)()

    def play_rounds(self, registry: StrategyRegistry, proposer: ProposerFor) -> None:
        """Play rounds until the plan's last, a budget that cannot pay for the next one, or patience stops it."""
        for rnd in range(1, self.s.rounds + 1):
            if not self.affords(rnd):
                break
            this = self.next_round(rnd, registry, proposer)
            promoted, failed = play_round(self.ctx, this, self.seen, self.tried)
            # a budget stop keeps what the round fully scored, and so does a Ctrl-C (without counting the round)
            stop = self.finish_round(rnd, promoted, whole=not isinstance(failed, KeyboardInterrupt))
            if failed is not None:
                raise failed
            if stop:
                break
        else:
            if self.single:
                self.stop_reason += f"; round {self.s.rounds} was the plan's last"

    def affords(self, rnd: int) -> bool:
        """Whether round `rnd` runs: a round is never started that the budget could cut off. When the calls left
        pay for the plan's round but not also for the confirmation held back for its finalists, and there is no
        finalist (no candidate reached the initial prompt's valid score), rounds go on with one candidate each: the
        confirmation's calls are search calls then (a run whose one candidate lost left 20 of its 51 unspent). They
        stop at a best to judge, or at a finalist whose confirmation the calls left still pay for."""
        left = self.ctx.boundary.remaining_calls()
        need = self.s.round_calls(len(self.train), len(self.valid)) * self.plan.calls_per_row
        keep_back = self.plan.confirm_calls
        if left is None or (left >= need + keep_back and not self.single):
            return True
        one = (1 + min(self.s.minibatch_size, len(self.train)) + len(self.valid)) * self.plan.calls_per_row
        n = self.finalists()
        if (self.best is self.base) if self.single else (keep_back and not n):
            waiting = n and left >= self.confirm_calls(n)  # a tie the confirmation can still test
            if left >= one and not waiting:
                return self._go_single(rnd)
        if self.single and self.best is not self.base:
            why = f"round {rnd} not played: candidate {self.best.id} leads on valid"
        elif self.single and left >= one:
            why = f"round {rnd} not played: {n} finalist{'s' if n != 1 else ''} to confirm"
        else:
            b = self.ctx.boundary.budget
            held = f", {b.reserved_calls} more held back for the final scoring" if b.reserved_calls else ""
            why = (f"budget: {left} of the budget of {b.shown('max_calls'):.0f} LM calls left{held}; round {rnd} and "
                   f"the confirmation can take {need + keep_back}" + (f" (a round of one candidate {one})"
                                                                     if self.single else ""))  # fmt: skip
        self.stop_reason = f"{self.stop_reason}; {why}" if self.single else why
        self.ctx.emit("stopped", why)
        return False

    def _go_single(self, rnd: int) -> bool:
        if not self.single:
            self.single, self.single_from = True, rnd
            k = self.s.candidates_per_round
            self.stop_reason = (f"from round {rnd} on, one candidate a round: the calls left pay for no round of {k} "
                                f"candidate{'s' if k != 1 else ''} and the confirmation, and no candidate needed it")  # fmt: skip
            self.ctx.emit("plan", self.stop_reason, total_rounds=self.s.rounds)
        return True

    def finalists(self) -> int:
        """The confirmation's finalists: candidates at or above the initial prompt's valid score (at most its
        top k)."""
        floor = self.base.valid_penalized or 0.0
        n = sum(p is not self.base and (p.valid_penalized or 0.0) >= floor for p in self.pool)
        return min(n, self.plan.confirm_top_k)

    def confirm_calls(self, finalists: int) -> int:
        """The plan's confirmation sized to `finalists` of its top k (and the initial prompt)."""
        return self.plan.confirm_calls // (self.plan.confirm_top_k + 1) * (finalists + 1) if finalists else 0

    def confirm_fits(self) -> bool:
        """Rounds of one candidate spent the confirmation's calls on search; their finalists are confirmed only if
        the calls left still pay for it, else the best is judged on the valid rows (`judge_on_valid`)."""
        left = self.ctx.boundary.remaining_calls()
        return not self.single or left is None or left >= self.confirm_calls(max(1, self.finalists()))

    def next_round(self, rnd: int, registry: StrategyRegistry, proposer: ProposerFor) -> Round:
        """Round `rnd`: its minibatch, then its proposal rng, drawn from the run's rng in this order (a seed fixes
        the run), and its slots split into those proposed at once and those that wait for the best's failures."""
        ctx, s, spec, best = self.ctx, self.s, self.spec, self.best
        train, pool = self.train, self.pool
        mb = self.rng.sample(train, min(s.minibatch_size, len(train))) if train else self.valid[: s.minibatch_size]
        names = _single_strategy(s, self.single_from, rnd) if self.single else _round_strategies(s, rnd)
        pctx = ProposalContext(
            spec=spec,
            best=best.candidate,
            best_score=best.valid_penalized or 0.0,
            history=[(p.candidate.instructions, p.valid_penalized or 0.0) for p in pool],
            failures=[],  # the teacher's slots get the best's minibatch failures (play_round)
            feedback=list(ctx.human_feedback),
            train=train,
            rng=random.Random(self.rng.random()),
            max_demos=s.max_demos,
            teacher=ctx.teacher_lm,
            temperature=s.teacher_temperature,
            pool=[p.candidate for p in pool],
            seen=frozenset(self.seen),
            initial=self.base.candidate,
        )
        ctx.emit(
            "round",
            f"round {rnd}/{s.rounds}: {len(names)} candidate{'s' if len(names) != 1 else ''}",
            round=rnd,
            total_rounds=s.rounds,
            best_score=best.valid_penalized,
        )
        early = [i for i, n in enumerate(names) if not getattr(registry.get(n), "needs_failures", True)]
        late = [i for i in range(len(names)) if i not in early]
        failures = functools.partial(_failures, spec=spec)
        return Round(rnd, mb, best, self.base, early, late, proposer(names, pctx), failures, self.program,
                     self.penalty, self.score_valid, meanwhile=self.flush,
                     promote_at_least=1 if self.single else self.plan.promote_at_least)  # fmt: skip

    def finish_round(self, rnd: int, promoted: list[Scored], whole: bool = True) -> bool:
        """Keep the top_k (the initial prompt always among them, so the result never scores below it), move the
        best only on a real gain and queue the round's checkpoint; True when patience says stop. A round a Ctrl-C
        cut short (`whole=False`) keeps what it fully scored, but is not counted as done: its checkpoint carries
        the last whole round's number, so a resume plays this round again."""
        if not whole:
            rnd -= 1
        s, spec, base = self.s, self.spec, self.base
        self.pool += promoted
        self.pool.sort(key=lambda p: (-(p.valid_penalized or 0.0), len(p.candidate.read_text(spec)), p.id))
        pool = self.pool
        keep = max(1, s.top_k - 1)  # the best always stays, even with top_k=1 (it used to leave the initial alone)
        self.pool = pool[: s.top_k] if base in pool[: s.top_k] else [*pool[:keep], base]
        new_best = self.pool[0]
        self.rounds_done = rnd
        if (new_best.valid_penalized or 0) > (self.best.valid_penalized or 0) + 1e-9:
            self.best, self.stale = new_best, 0
        else:  # a tie is no gain for patience, but the pool's tie-break (less to read) still picks the best
            self.best = new_best if (new_best.valid_penalized or 0) >= (self.best.valid_penalized or 0) else self.best
            self.stale += 1
        self.pending.append(functools.partial(self.ctx.save_progress, _checkpoint(rnd, self.best, base)))
        if not whole:
            return True
        self.ctx.emit(
            "round",
            f"round {rnd} done: best valid {self.best.valid_penalized:.3f}",
            round=rnd,
            total_rounds=s.rounds,
            best_score=self.best.valid_penalized,
        )
        if self.stale >= s.patience:
            stale = f"no improvement for {self.stale} rounds"
            self.stop_reason = f"{self.stop_reason}; {stale}" if self.single else stale
            return True
        return False

    def confirm(self, choose: Confirm) -> None:
        """Let `choose` (the optimizer's `_confirm`) pick among the pool on the plan's train rows; its verdict joins
        the stop reason and the choice is checkpointed at once (there is no later round to overlap with)."""
        confirm = (self.train[: self._confirm_rows()], self.plan.confirm_top_k)
        self.best, verdict = choose(self.ctx, self.pool, self.base, *confirm, self.program, self.penalty)
        self.stop_reason = f"{self.stop_reason}; {verdict}"
        self.ctx.save_progress(_checkpoint(self.rounds_done, self.best, self.base))

    def judge_on_valid(self) -> None:
        """The one candidate of a plan without a confirmation (`MetaPlan.valid_evidence`), or the best after rounds
        of one candidate whose confirmation the budget no longer pays for (`affords`), stays the choice only if it
        beats the initial prompt row by row on the valid rows by the paired-evidence rule. When those rows scored
        other candidates too they picked it among them: then it needs p <= EVIDENCE_P / candidates scored there
        (Bonferroni, conservative: the teacher saw their scores), with or without a row worse."""
        best, base = self.best, self.base
        if best is base and self.single:
            self.stop_reason += "; no candidate beat the initial prompt on the valid rows"
        if best is base or best.valid_report is None or base.valid_report is None:
            return
        theirs = {r.index: r.raw_score for r in base.valid_report.records}
        paired = evidence((r.raw_score, theirs.get(r.index)) for r in best.valid_report.records)
        tested = sum(t is not base and t.valid_report is not None for t in self.tried)
        need = EVIDENCE_P / max(1, tested)
        kept = paired.wins > 0 and (paired.enough if tested <= 1 else paired.p_value <= need)
        of = "one candidate" if tested <= 1 else f"the best of {tested} candidates scored there"
        best.note = f"valid rows as its test ({of}): {paired}" + ("" if kept else ": not kept")
        if not kept:
            self.best = base
            self.ctx.save_progress(_checkpoint(self.rounds_done, base, base))
        rule = f"p <= {EVIDENCE_P} or no row worse" if tested <= 1 else f"p <= {need:.2g}"
        verdict = "kept" if kept else f"not kept (needs {rule})"
        self.stop_reason = f"{self.stop_reason}; {of}, valid rows as its test: {paired}, {verdict}"

    def prefer_less_to_read(self) -> None:
        """A choice with no raw gain over the initial prompt (won on the instruction-only length penalty) that reads
        more words, demos included, is undone: "kept for its length" chose 4 demos and 77 words over 22 at equal
        quality, and every later call would have paid for them."""
        best, base, spec = self.best, self.base, self.spec
        if best is base:
            return
        gain = (
            best.confirm_raw_gain
            if best.confirm_raw_gain is not None
            else (best.valid_raw or 0.0) - (base.valid_raw or 0.0)
        )
        more = best.candidate.words_read(spec) - base.candidate.words_read(spec)
        if gain > 1e-9 or more <= 0:
            return
        self.best = base
        self.stop_reason = (f"{self.stop_reason}; candidate {best.id} had no raw gain over the initial prompt and "
                            f"reads {more} more words (demos included): the initial prompt is kept")  # fmt: skip
        self.ctx.save_progress(_checkpoint(self.rounds_done, base, base))

    def _confirm_rows(self) -> int:
        """The plan's confirmation rows, or more when no further round fits and calls are left: a fitted plan cuts
        the confirmation to its floor so that more rounds can run, and calls no round used give the evidence rule
        more rows instead of going unspent (at a third of the DSPy peer's calls, 37 of 89 did)."""
        planned, left = self.plan.confirm_rows, self.ctx.boundary.remaining_calls()
        if left is None or not planned or planned >= len(self.train):
            return planned
        per_row = (self.plan.confirm_top_k + 1) * self.plan.calls_per_row
        return min(len(self.train), max(planned, left // per_row))

    def result(self, backend: str) -> BackendResult:
        """The best and the initial prompt with their valid scores, every candidate tried, and why the search
        stopped; with both as predictors for the final scoring."""
        spec, best, base, s = self.spec, self.best, self.base, self.s
        result = BackendResult(
            backend=backend,
            prompt=best.candidate.render(spec),
            instructions=best.candidate.instructions,
            demos=best.candidate.demos,
            format_line=best.candidate.format_line,
            valid_raw=best.valid_raw or 0.0,
            valid_penalized=best.valid_penalized or 0.0,
            initial_prompt=base.candidate.render(spec),
            initial_valid_raw=base.valid_raw or 0.0,
            initial_valid_penalized=base.valid_penalized or 0.0,
            candidates=[_record(t, spec, self.ctx) for t in self.tried],
            rounds_completed=self.rounds_done,
            stop_reason=self.stop_reason,
            settings={**s.model_dump(), "search_plan": self.plan.describe()},
        )
        return result.with_predictors(self.program(best.candidate), self.program(base.candidate))


def _checkpoint(rnd: int, best: Scored, base: Scored) -> dict[str, Any]:
    return {
        "round": rnd,
        "best": {**best.candidate.model_dump(), "valid_raw": best.valid_raw, "valid_penalized": best.valid_penalized},
        "initial_valid_raw": base.valid_raw,
        "initial_valid_penalized": base.valid_penalized,
    }


def _round_strategies(s: MetaSettings, rnd: int) -> list[str]:
    """Pinned strategies first in every round; the other slots rotate through `strategies` in order."""
    pinned = s.pinned_strategies[: s.candidates_per_round]
    free = s.candidates_per_round - len(pinned)
    order = list(s.strategies) or list(pinned)
    start = (rnd - 1) * free
    return [*pinned, *(order[(start + i) % len(order)] for i in range(free))]


def _single_strategy(s: MetaSettings, first: int, rnd: int) -> list[str]:
    """A round of one candidate after round `first` - 1: the rotation goes on one strategy a round from where the
    plan's rounds left it (taking each round's first slot skipped every strategy but one in k)."""
    order = list(s.strategies) or list(s.pinned_strategies)
    free = s.candidates_per_round - len(s.pinned_strategies[: s.candidates_per_round])
    return [order[((first - 1) * free + rnd - first) % len(order)]]


def _failures(report: Any, spec: Any) -> list[dict[str, Any]]:
    out = []
    for r in report.records:
        if r.raw_score < 1.0:
            out.append(
                {
                    "input": "; ".join(f"{k}: {v}" for k, v in r.inputs.items()),
                    "expected": ", ".join(str(r.gold.get(n)) for n in spec.output_names),
                    "got": r.error or ", ".join(str((r.output or {}).get(n)) for n in spec.output_names),
                    "feedback": r.feedback,
                }
            )
    return out


def _record(t: Scored, spec: Any, ctx: RunContext) -> CandidateRecord:
    text = t.candidate.penalty_text(spec)
    pen = ctx.metrics.penalty(text) or 1.0
    return CandidateRecord(
        id=t.id,
        round=t.round,
        origin=t.candidate.origin,
        prompt=t.candidate.render(spec),
        instructions=t.candidate.instructions,
        n_demos=len(t.candidate.demos),
        length=ctx.metrics.length(text),
        minibatch_score=t.minibatch,
        valid_raw=t.valid_raw,
        valid_penalized=t.valid_penalized,
        confirm_score=t.confirm,
        note=t.note,
        demos=t.candidate.demos,
        format_line=t.candidate.format_line,
        minibatch_raw=None if t.minibatch is None else t.minibatch / pen,
        confirm_raw=None if t.confirm is None else t.confirm / pen,
        tokens=approx_tokens(t.candidate.render(spec)),  # all the model reads but the row's values
    )
