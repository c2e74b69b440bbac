"""The meta backend's search plan, sized to the data and the call budget before any call is made.

A preset (quick/moderate/heavy) names the search a user would like: rounds, candidates per round, rows per
screening minibatch, finalists confirmed on train rows. With `--max-calls` the preset may not fit; instead of
giving up at round 1 ("0 rounds"), the plan shrinks it up front, keeping the most candidates the budget can pay
for: fewer rows per confirmation, smaller screening minibatches, fewer finalists, fewer rounds, fewer candidates.
Every size is an upper bound (every candidate promoted to the valid split), so a planned round is never cut off.
Only a budget that cannot pay for one candidate gives no search, and the run says so before it spends anything.
A fitted plan's rounds are the ones the budget pays for even if every candidate is promoted; most are screened out
on the minibatch for a few calls, so the run goes on with more rounds while what is left still pays for one more
round and the confirmation, up to as many candidates as the preset would try (patience scaled the same way).

The dry run shows the plan and an expected call count (`expected_calls`): the upper bound assumes every candidate
is promoted and every round runs, which real runs rarely do (patience stops them, minibatches screen candidates
out, duplicates and cached calls are free), so the estimate uses what a typical run does instead.
"""

from __future__ import annotations

import itertools
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from promptomatix.errors import NoSearchFits

if TYPE_CHECKING:
    from promptomatix.backends.meta import MetaSettings

MIN_MINIBATCH = 3  # fewer screening rows than this cannot tell candidates apart
MIN_CONFIRM_ROWS = 8  # a confirmation on fewer train rows is noise; below it the choice is on valid alone
#: What a typical run spends, measured with benchmarks/estimate.py (RESULTS.md § 5) and checked against real-model
#: runs: in round 1 every slot gives a new candidate (slots past SLOTS_FULL add half as many: a round's strategies
#: repeat); a later round LATER of round 1's (a slot that gives nothing tries other strategies, and a few still
#: come back empty or repeated); a round promotes every new candidate its screening passes, and at least the
#: plan's `promote_at_least`: on qwen2.5-coder-0.5b the screening passed nearly all (RESULTS.md §7d), so a typical
#: round promotes its new candidates. TEACHER of the slots call the teacher; the confirmation scores CONFIRM of the
#: finalists' unscreened train rows. Rows a prompt was already scored on are cached and free.
SLOTS_FULL, LATER, TEACHER, CONFIRM = 4, 0.875, 0.4, 0.7


class MetaPlan(BaseModel):
    """What the meta backend will do, at most, and what that costs in LM calls."""

    rounds: int = Field(ge=0)  # rounds the budget pays for even if every candidate is promoted
    max_rounds: int = 0  # a fitted plan goes on while the budget lasts, up to these (else = rounds)
    patience: int = 1  # rounds without improvement that stop the run (a fitted plan's is scaled to its candidates)
    candidates_per_round: int = Field(ge=1)
    minibatch_size: int = Field(ge=1)
    confirm_top_k: int = Field(ge=0)
    confirm_rows: int = Field(ge=0)  # train rows the finalists are confirmed on (0: no confirmation)
    n_train: int = 0
    n_valid: int = 0
    budget: int | None = None  # calls the backend may make (None: no limit)
    baseline_calls: int = 0
    round_calls: int = 0  # at most, per round
    confirm_calls: int = 0  # at most
    expected_calls: int = 0
    least_calls: int = 0  # a run whose every candidate fails its screening (a small model's usual case)
    typical_rounds: int = 0  # rounds a typical run makes before patience stops it (what expected_calls assumes)
    calls_per_row: int = 1  # 2 when a judge scores each row: every count here is in calls
    #: each round's best screened candidates promoted to valid even if they fail their screening (all but one of
    #: a round's candidates): a round's calls are then what the plan says, whatever the screening decides
    promote_at_least: int = 0
    changes: list[str] = Field(default_factory=list)  # what was cut from the preset to fit the budget
    #: one candidate and no confirmation (the budget pays for no more): its paired comparison with the initial
    #: prompt on the valid rows is its test. One candidate is not the best of many, so valid is not biased for it.
    valid_evidence: bool = False

    @property
    def max_calls(self) -> int:
        """Upper bound of the guaranteed rounds (more rounds run only while the budget pays for them)."""
        return self.baseline_calls + self.rounds * self.round_calls + self.confirm_calls

    @property
    def extends(self) -> bool:
        return self.max_rounds > self.rounds

    def _promoted(self) -> str:
        return _promoted_words(self.candidates_per_round, self.minibatch_size, self.promote_at_least)

    def describe(self) -> list[str]:
        """Lines for the dry run and the run's first progress message."""
        budget = f" of a budget of {self.budget}" if self.budget is not None else ""
        if self.rounds == 0:
            return [f"search plan: no search — {self.changes[-1] if self.changes else 'no rounds requested'}"]
        conf = (f"top {self.confirm_top_k} confirmed on {self.confirm_rows} train rows" if self.confirm_calls
                else "kept only with paired evidence on the valid rows" if self.valid_evidence
                else "no confirmation (chosen on valid)")  # fmt: skip
        more = (f" (then more rounds, up to {self.max_rounds}, while the budget pays for one more and the "
                "confirmation)" if self.extends else "")  # fmt: skip
        if self.extends and self.confirm_calls:
            conf += ("; if the budget stops the rounds before a candidate reaches the initial prompt's valid score, "
                     "they go on with one candidate each on the calls held back for it")  # fmt: skip
        cap = self.budget if self.extends and self.budget is not None else self.max_calls
        low = self.least_calls < 0.85 * self.expected_calls and self.patience < self.typical_rounds
        some = 0 < self.promote_at_least < self.candidates_per_round
        least = (f", about {self.least_calls} if patience stops it after {self.patience} round"
                 f"{'s' if self.patience != 1 else ''}" + (f", promoting only {self.promote_at_least} a round" if some
                 else "") if low else "")  # fmt: skip
        lines = [
            f"search plan: {self.rounds} round{'s' if self.rounds != 1 else ''} × {self.candidates_per_round} "
            f"candidate{'s' if self.candidates_per_round != 1 else ''}{more}, {self._promoted()} {self.n_valid} valid rows; "
            f"{conf}; at most {cap} calls{budget}, about {self.expected_calls} in a typical run"
            + (
                f" (patience typically stops it after {self.typical_rounds} of {self.max_rounds} rounds)"
                if self.typical_rounds < self.max_rounds and not self.extends
                else ""
            )
            + least
        ]
        if self.changes:
            lines.append("fitted to the budget: " + "; ".join(self.changes))
        return lines


def _promoted_words(k: int, m: int, p: int) -> str:
    if p >= k:
        return "each candidate scored on"  # no screening: every one is promoted anyway
    if p == 0:
        return f"screened on {m} train rows, those that pass promoted to"
    return f"screened on {m} train rows, those that pass and at least the best {p} of each round promoted to"


def effective_rows(n_train: int, n_valid: int) -> tuple[int, int, bool]:
    """(train, valid, confirm possible) as the meta backend sees them: without valid rows it halves train."""
    if n_valid:
        return n_train, n_valid, n_train > 0
    if n_train >= 4:
        return n_train // 2, n_train - n_train // 2, False
    return 0, n_train, False


def round_cost(k: int, m: int, n_valid: int) -> int:
    """At most: k teacher calls, the best's and k candidates' minibatches, k candidates on valid."""
    return k + (k + 1) * m + k * n_valid


def promotions(k: int) -> int:
    """Candidates a round of `k` promotes to the valid split at least: all but one. A round of one candidate has
    no floor: a plan cut to a small budget tries more candidates, the screened-out ones for a few calls each, and
    goes on while the budget pays (so it spends about the budget whatever the screening decides)."""
    return k - 1


def confirm_cost(finalists: int, rows: int) -> int:
    return (finalists + 1) * rows if finalists and rows else 0


def _finalists(s: MetaSettings, top_k: int) -> int:
    return min(s.confirm_top_k, max(0, top_k - 1))


def plan_meta(s: MetaSettings, n_train: int, n_valid: int, budget: int | None, calls_per_row: int = 1) -> MetaPlan:
    """The plan in LM calls when scoring a row costs `calls_per_row` of them (2 when a judge scores each row): sized
    in scored rows to the budget's share, then counted in calls, so a judge task's planned rounds are not cut off."""
    if calls_per_row <= 1:
        return _plan_rows(s, n_train, n_valid, budget)
    k = calls_per_row
    plan = _plan_rows(s, n_train, n_valid, None if budget is None else budget // k, k)
    plan = plan.model_copy(update={
        "budget": budget, "calls_per_row": k, "baseline_calls": plan.baseline_calls * k,
        "round_calls": plan.round_calls * k, "confirm_calls": plan.confirm_calls * k,
        "expected_calls": plan.expected_calls * k, "least_calls": plan.least_calls * k,
    })  # fmt: skip
    if budget is not None and plan.rounds:
        plan.changes.insert(0, f"each scored row costs {k} calls (the task model's answer and the judge's score)")
    return plan


def _plan_rows(s: MetaSettings, n_train: int, n_valid: int, budget: int | None, k: int = 1) -> MetaPlan:
    """The preset when it fits (or no budget is set); else the plan that tries the most candidates in budget."""
    train, valid, can_confirm = effective_rows(n_train, n_valid)
    m0 = max(1, min(s.minibatch_size, train or valid or 1))
    f0 = _finalists(s, s.top_k) if can_confirm else 0
    c0 = train if f0 else 0
    preset = _plan(s, s.rounds, s.candidates_per_round, m0, f0, c0, train, valid, budget)
    if budget is None or preset.max_calls <= budget:
        return preset
    left = budget - valid
    best: tuple[Any, ...] | None = None
    m_floor = min(m0, MIN_MINIBATCH)
    c_floor = min(c0, MIN_CONFIRM_ROWS)
    # A preset with a confirmation keeps one (at least one finalist on MIN_CONFIRM_ROWS rows): a candidate that got
    # lucky on valid must not be returned unconfirmed because the budget was spent on more candidates.
    for k, m, f in itertools.product(range(s.candidates_per_round, 0, -1), range(m0, m_floor - 1, -1),
                                     range(f0, 0 if f0 else -1, -1)):  # fmt: skip
        per_round = round_cost(k, m, valid)
        if f:  # the most confirmation rows that still leave one round
            c = min(c0, (left - per_round) // (f + 1))
            if c < c_floor:
                continue
        else:
            c = 0
        rounds = min(s.rounds, (left - confirm_cost(f, c)) // per_round) if per_round else s.rounds
        if rounds < 1:
            continue
        # Most candidates first, then confirmation (rows × finalists), then screening rows, then fewer rounds.
        key = (rounds * k, min(f, 1) * c, m, f, -rounds)
        if best is None or key > best[0]:
            best = (key, rounds, k, m, f, c)
    if best is None and f0 and valid + round_cost(1, m_floor, valid) <= budget:
        return _one_candidate(s, preset, m_floor, train, valid, budget)
    if best is None:  # not even one candidate judged on valid (`_one_candidate`) fits
        need = valid + round_cost(1, m_floor, valid)
        per = f" ({k} calls a scored row)" if k > 1 else ""
        why = (f"the budget leaves {budget * k} calls for the search; scoring the initial prompt on {valid} valid rows "
               f"and one candidate take {need * k}{per}")  # fmt: skip
        return preset.model_copy(update={"rounds": 0, "confirm_calls": 0, "changes": [why],
                                         "expected_calls": valid})  # fmt: skip
    _, rounds, k, m, f, c = best
    if f and c > c_floor:  # fewer confirmation rows, down to the floor, so that one more round can run
        c = max(c_floor, min(c, (left - (rounds + 1) * round_cost(k, m, valid)) // (f + 1)))
    # as many candidates as the preset would try, and as many failed candidates before patience stops the run
    scale = -(-s.candidates_per_round // k)
    plan = _plan(s, rounds, k, m, f, c, train, valid, budget, max_rounds=max(rounds, s.rounds * scale),
                 patience=s.patience * scale)  # fmt: skip
    plan.changes = _changes(preset, plan)
    return plan


def _one_candidate(s: MetaSettings, preset: MetaPlan, m: int, train: int, valid: int, budget: int) -> MetaPlan:
    """A budget that pays for one screened candidate but not its confirmation: that one candidate, judged by the
    paired-evidence rule on the valid rows (the run said "no search fits" before, though one candidate did)."""
    m = max(m, min(s.minibatch_size, train, (budget - 2 * valid - 1) // 2))  # screen on what the budget leaves
    plan = _plan(s, 1, 1, m, 0, 0, train, valid, budget, max_rounds=1, patience=1)
    plan.valid_evidence = True
    plan.promote_at_least = 1  # its one candidate is judged on the valid rows whatever its screening says
    plan.expected_calls, plan.typical_rounds = _typical(plan)
    plan.least_calls = _least(plan)
    plan.changes = [*_changes(preset, plan), "one candidate, no confirmation: kept only if it wins on the valid "
                    "rows by the paired-evidence rule (not picked from many, so those rows are a fair test)"]  # fmt: skip
    return plan


def _plan(
    s: MetaSettings, rounds: int, k: int, m: int, f: int, c: int, train: int, valid: int, budget: int | None,
    *, max_rounds: int | None = None, patience: int | None = None,
) -> MetaPlan:  # fmt: skip
    plan = MetaPlan(
        rounds=rounds, max_rounds=max_rounds or rounds, patience=patience or s.patience, candidates_per_round=k,
        minibatch_size=m, confirm_top_k=f, confirm_rows=c, n_train=train, n_valid=valid, budget=budget,
        baseline_calls=valid, round_calls=round_cost(k, m, valid), confirm_calls=confirm_cost(f, c),
        promote_at_least=promotions(k),
    )  # fmt: skip
    plan.expected_calls, plan.typical_rounds = _typical(plan)
    plan.least_calls = _least(plan)
    return plan


def _typical(plan: MetaPlan) -> tuple[int, int]:
    """(calls, rounds) of a typical run: rounds until patience stops it after two improvements, each new candidate
    screened and promoted to the valid split; two finalists and the initial prompt confirmed on the train rows
    they were not screened on. Within ±15% of fake-model runs of every preset, with and without a budget
    (tests/test_estimate.py)."""
    total, rounds = _walk(plan, plan.patience + 2)
    if rounds and plan.confirm_top_k:
        rows = plan.confirm_rows
        if plan.budget is not None and 0 < rows < plan.n_train:  # the run widens it with the calls left
            rows = min(plan.n_train, max(rows, int(plan.budget - total) // (plan.confirm_top_k + 1)))
        total += CONFIRM * (min(2, plan.confirm_top_k) + 1) * max(0, rows - plan.minibatch_size)
    return round(total), rounds


def _least(plan: MetaPlan) -> int:
    """A run whose candidates all fail their minibatch screening and whose patience stops it earliest: `patience`
    rounds that promote only the round's planned `promote_at_least`; duplicates and rejected rewrites can make it
    less."""
    return round(_walk(plan, plan.patience, typical=False)[0]) if plan.rounds else plan.baseline_calls


def _walk(plan: MetaPlan, most: int, typical: bool = True) -> tuple[float, int]:
    """(calls, rounds) over up to `most` rounds: the baseline, then per round the teacher slots, the best's
    minibatch (its rows seen before are cached), each new candidate's minibatch and the promoted ones' valid rows.
    Round 1's slots are all new, later rounds' fewer in a typical run (strategies repeat; an empty slot tries
    others); every round promotes at least `promote_at_least` of them, a typical one each new candidate. A fitted
    plan's rounds past the guaranteed ones run while the budget left pays for one more and the confirmation, as
    the run checks; in a run whose every candidate fails, rounds of one candidate then go on while it pays."""
    k, m, t, v = plan.candidates_per_round, plan.minibatch_size, plan.n_train, plan.n_valid
    slots = min(k, SLOTS_FULL) + 0.5 * max(0, k - SLOTS_FULL)
    total, rounds = float(plan.baseline_calls), 0
    for i in range(min(plan.max_rounds, most)):
        if i >= plan.rounds and plan.budget is not None and plan.budget - total < plan.round_calls + plan.confirm_calls:
            one = v + TEACHER * (1 + m)  # a round of one candidate, unscreened (after a teacher slot's best minibatch)
            if typical or not plan.confirm_calls or plan.budget - total < 1 + m + v:  # (in scored rows here)
                break
            total, rounds = total + one, rounds + 1  # every candidate failed: nothing to confirm, it goes on (MetaRun)
            continue
        new = slots if i == 0 else LATER * slots
        promoted = max(min(plan.promote_at_least, k), new) if typical else min(plan.promote_at_least, k)
        screened = max(new, promoted) if plan.promote_at_least < k else 0  # all promoted: none screened
        # the best's minibatch is read by the screening (and the teacher's slots; the one-candidate plan's one slot
        # is the rotation's first, a demo set by default)
        best = 0 if not screened else m if i == 0 or not t else m * (1 - m / t)
        total += TEACHER * k + best + screened * m + promoted * v
        rounds += 1
    return total, rounds


def _changes(preset: MetaPlan, plan: MetaPlan) -> list[str]:
    out = []
    for name, attr in (("rounds", "rounds"), ("candidates per round", "candidates_per_round"),
                       ("screening rows", "minibatch_size"), ("finalists", "confirm_top_k"),
                       ("confirmation rows", "confirm_rows")):  # fmt: skip
        a, b = getattr(preset, attr), getattr(plan, attr)
        if a != b:
            out.append(f"{name} {a} → {b}")
    return out


def apply_plan(s: MetaSettings, plan: MetaPlan) -> MetaSettings:
    """The settings the run uses: the preset's, with the plan's sizes."""
    return s.model_copy(update={
        "rounds": plan.max_rounds, "patience": plan.patience, "candidates_per_round": plan.candidates_per_round,
        "minibatch_size": plan.minibatch_size, "confirm_top_k": plan.confirm_top_k,
    })  # fmt: skip


def no_search_error(plan: MetaPlan, *, max_calls: int | None, left: int | None = None) -> NoSearchFits:
    """Raised before the first call of a run whose budget cannot pay for one candidate. `left`: the calls the
    budget leaves the search, negative when what is held back for the final scoring already exceeds it."""
    need = round_cost(1, min(plan.minibatch_size, MIN_MINIBATCH), plan.n_valid)  # one candidate, no confirmation
    need = plan.baseline_calls + need * plan.calls_per_row
    short = need - (plan.budget or 0 if left is None else left)
    return search_does_not_fit(plan.changes[-1] if plan.changes else "no rounds", max_calls, short)


#: The command whose run is planned: `refine` and `resume` reuse the session's rows and take no row-size flags.
PLAN_COMMAND: ContextVar[str] = ContextVar("promptomatix_plan_command", default="optimize")


def search_does_not_fit(why: str, max_calls: int | None, short: int) -> NoSearchFits:
    """ "No search fits the budget", with the --max-calls that would do (`short`: the calls missing), for every
    backend that refuses a budget before its first call. Only flags of the command that runs it are named: refine
    and resume rejected the --valid-data-size/--test-data-size it advised."""
    raise_to = f"--max-calls {max_calls + short}" if max_calls is not None else "a larger --max-calls"
    if PLAN_COMMAND.get() != "optimize":
        hint = f"use {raise_to}; the valid and test rows are the session's"
    else:
        hint = f"use {raise_to}, or fewer valid/test rows (--valid-data-size, --test-data-size)"
    return NoSearchFits(f"no search fits the budget: {why}", hint=hint)


def estimate_optimizer_calls(settings: Any, n_train: int, n_valid: int, budget: int | None = None) -> int:
    """The dry run's expected LM calls of the optimizer stage (meta: its plan; dspy: see `dspy_expected_calls`)."""
    if hasattr(settings, "candidates_per_round"):
        return plan_meta(settings, n_train, n_valid, budget).expected_calls
    return dspy_expected_calls(settings, n_train, n_valid, budget)


def search_plan_lines(settings: Any, n_train: int, n_valid: int, budget: int | None = None) -> list[str]:
    """What the dry run shows of the search: the meta plan, or what the DSPy optimizer is expected to do."""
    if hasattr(settings, "candidates_per_round"):
        return plan_meta(settings, n_train, n_valid, budget).describe()
    from promptomatix.backends.dspy_estimate import expected_dspy

    est = expected_dspy(settings, n_train, n_valid)
    lines = [f"expected search: {line}" for line in est.lines]
    if budget is not None and est.calls > budget:
        lines.append(f"the budget leaves {budget} calls for the search, fewer than a typical run's "
                     f"{est.calls:.0f}: DSPy would be stopped there and the initial prompt kept (raise --max-calls, "
                     "or use fewer valid rows)")  # fmt: skip
    return lines


def dspy_expected_calls(settings: Any, n_train: int, n_valid: int, budget: int | None = None) -> int:
    """What a typical run of the DSPy optimizer spends (backends/dspy_estimate.py), and never more than the budget
    lets it spend (a binding budget stops DSPy there)."""
    from promptomatix.backends.dspy_estimate import expected_dspy

    calls = round(expected_dspy(settings, n_train, n_valid).calls)
    return calls if budget is None else min(calls, budget)
