"""DSPy's fully evaluated trials, followed while the search runs, so a stop inside it keeps what it found.

Why: a budget stop or Ctrl-C inside MIPROv2 or GEPA threw the finished part of the search away. DSPy had scored
trials on the whole valid set above the initial program ("Best full score so far! 93.24" vs 75.8), yet the run
kept the initial prompt and recorded none of them. Here each full-valid evaluation is logged as it happens; one
that beats DSPy's score of the initial program is scored with the run's own metric on the valid rows (free when
the task model is greedy and DSPy used every valid row: each answer is in the boundary's cache) and, if it beats
the initial program there too, saved as the run's best so far. A stop then keeps it; the held-out verdict still
compares it with the initial prompt on the test rows.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from promptomatix.backends.dspy_modules import dump_program, instructions_text, program_demos, render_program
from promptomatix.errors import BudgetExceeded, BudgetStop
from promptomatix.run.checkpoint import BestSoFar, Checkpoint

log = logging.getLogger(__name__)

#: What each optimizer can hand back when it is stopped (the others keep no scored programs we can read).
_RESCUABLE = {"miprov2", "gepa"}


class TrialLog:
    """Programs the optimizer scored on its whole valid set, in order, and the best one adopted so far."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.default: float | None = None  # DSPy's own score of the initial program
        self.best_score: float | None = None
        self.best_program: Any = None
        self.adopted: Any = None  # the _Scored trial saved as the best so far

    def full(self, program: Any, score: float, n_rows: int, *, default: bool = False) -> None:
        """One full-valid evaluation (MIPROv2's first one, and GEPA's seed, are the initial program)."""
        with self.lock:
            if default or self.default is None:
                self.default = score if self.default is None else self.default
                return
            sc = self.run.add(f"{self.run.s.optimizer} trial", program.deepcopy(),
                              f"DSPy full valid score {score:.3f} (mean per-example metric x penalty)")  # fmt: skip
            if score <= max(self.default, self.best_score if self.best_score is not None else self.default):
                return
            self.best_score, self.best_program = score, sc
        if self.run.s.optimizer in _RESCUABLE and self._free(n_rows):
            self.adopt(sc)

    def _free(self, n_rows: int) -> bool:
        """Scoring a trial now costs no call: greedy answers are cached and DSPy ran it on every valid row."""
        return bool(getattr(self.run, "replay", False)) and n_rows == len(self.run.valid_rows)

    def adopt(self, sc: Any) -> bool:
        """Score `sc` on valid with the run's metric; keep it as the best so far if it beats the initial program."""
        run, base = self.run, self.run.tried[0]
        if base.valid_penalized is None:
            return False  # the baseline beside the optimizer is not scored yet
        if sc.valid_raw is None:
            run.score_valid(sc)
        if not run._better_or_equal(sc, base) or sc.valid_penalized <= (base.valid_penalized or 0.0) + 1e-9:
            sc.note += "; not above the initial program on the run's valid score"
            return False
        if self.adopted is None or (sc.valid_penalized or 0.0) > (self.adopted.valid_penalized or 0.0) + 1e-9:
            self.adopted = sc
            sc.note += "; DSPy's best fully evaluated trial so far, saved as the best so far"
            run.checkpoint(1, sc, base)
        return True


def keep_after_stop(run: Any, base: Any, why: str) -> tuple[Any, str, int]:
    """(best, stop reason, rounds) after a budget stop inside the optimizer: its best fully evaluated trial when it
    beat the initial program on valid, else the initial program, saying why."""
    trials: TrialLog = run.trials
    name = run.s.optimizer
    if name not in _RESCUABLE:
        return base, f"{why}; kept the initial program (DSPy {name} keeps no scored trials to hand back)", 0
    best = trials.adopted
    if best is None and trials.best_program is not None and trials.best_program.valid_raw is None:
        try:  # not scored during the search (a sampling model, or DSPy scored fewer rows): try now
            best = trials.best_program if trials.adopt(trials.best_program) else None
        except (BudgetStop, BudgetExceeded) as e:
            log.debug("could not score DSPy's best trial after the stop: %s", e)
            return base, (f"{why}; kept the initial program (DSPy's best fully evaluated trial could not be scored "
                          "on the valid rows within the budget)"), 0  # fmt: skip
    if best is None:
        return base, f"{why}; kept the initial program (no fully evaluated trial of DSPy {name} beat it)", 0
    run.ctx.emit("candidate", f"kept DSPy's best fully evaluated trial: valid {best.valid_penalized:.3f}", round=1,
                 total_rounds=1, best_score=best.valid_penalized)  # fmt: skip
    return best, (f"{why}; kept DSPy's best fully evaluated trial (valid {best.valid_penalized:.3f} vs initial "
                  f"{base.valid_penalized:.3f})"), 1  # fmt: skip


def save_best(run: Any, rnd: int, best: Any, base: Any) -> None:
    """Best-so-far for the session: DSPy's own rendering of the prompt and the program JSON, so an interrupted
    run is saved as the dspy backend made it (and `sessions export --format dspy` works on it). A trial saved
    during the search (round 1) is not overwritten by the baseline's save (round 0) finishing after it."""
    lock, last = run._saved
    with lock:
        if rnd < last[0]:
            return
        last[0] = rnd
        run.ctx.save_progress(
            Checkpoint(
                round=rnd,
                best=BestSoFar(
                    instructions=instructions_text(best.program),
                    demos=program_demos(best.program),
                    origin=best.origin,
                    valid_raw=best.valid_raw,
                    valid_penalized=best.valid_penalized,
                    prompt=render_program(best.program, run.adapter),
                    program_json=dump_program(best.program, run.s.module, run.adapter_name),
                ),
                initial_valid_raw=base.valid_raw,
                initial_valid_penalized=base.valid_penalized,
            )
        )


#: reflection proposals failed in a row before GEPA is stopped (a retried provider error takes ~3.5 s each)
GIVE_UP_AFTER = 8


class TeacherGaveUp(BaseException):
    """Raised from GEPA's callback to stop it; `gepa()` turns it into ProposalsFailed with the provider's cause."""

    def __init__(self, streak: int) -> None:
        super().__init__(streak)
        self.streak = streak


class GepaWatch:
    """GEPA callback: its full-valid evaluations go to the trial log, and its reflection proposals are counted.

    GEPA swallows a failed reflection (the teacher's answer not parsed, the provider failing) and goes on, so a
    run whose every proposal failed ended `completed`, exit 0, as if it had optimized."""

    def __init__(self, trials: TrialLog, student: Any, give_up_after: int = GIVE_UP_AFTER) -> None:
        self.trials = trials
        self.student = student
        self.started = 0
        self.proposed = 0
        self.streak = 0  # proposals failed in a row, counted by whole iterations
        self.give_up_after = give_up_after
        self._iteration: tuple[Any, int, int] | None = None  # (iteration, started, proposed) at its first start

    def on_proposal_start(self, event: Any) -> None:
        """Give up on a teacher that failed the last `give_up_after` proposals in a row: GEPA draws parent after
        parent, and a teacher down (HTTP 500 through every retry) kept it going 20 minutes and 1,289 requests."""
        iteration = event.get("iteration") if isinstance(event, dict) else None
        if self._iteration is None or self._iteration[0] != iteration:  # the last iteration is over: count it
            if self._iteration is not None:
                _, started, proposed = self._iteration
                failed, worked = self.started - started, self.proposed - proposed
                self.streak = 0 if worked else self.streak + failed
            if self.streak >= self.give_up_after:
                raise TeacherGaveUp(self.streak)  # a BaseException: GEPA's callback guard catches only Exception
            self._iteration = (iteration, self.started, self.proposed)
        self.started += 1

    def on_proposal_end(self, event: Any) -> None:
        self.proposed += 1

    def on_valset_evaluated(self, event: Any) -> None:
        if event["num_examples_evaluated"] < event["total_valset_size"]:
            return  # a partial evaluation is not a full-valid score
        program = self.student.deepcopy()
        for name, predictor in program.named_predictors():
            if name in event["candidate"]:
                predictor.signature = predictor.signature.with_instructions(event["candidate"][name])
        self.trials.full(program, float(event["average_score"]), event["total_valset_size"],
                         default=event["candidate_idx"] == 0)  # fmt: skip

    def failed(self) -> int:
        return self.started - self.proposed

    def check(self, cause: str) -> str:
        """Raise when no proposal worked; else a note for the stop reason when some failed ('' when none)."""
        if self.started and not self.proposed:
            raise ProposalsFailed(f"all {self.started} of GEPA's reflection (teacher) proposals failed: {cause}")
        if self.failed():
            return f"{self.failed()} of {self.started} GEPA reflection (teacher) proposals failed: {cause}"
        return ""


class TeacherStopped(RuntimeError):
    """GEPA was stopped after its teacher failed proposal after proposal, but earlier proposals worked: like a
    budget stop, the run keeps DSPy's best fully evaluated trial (failing it threw a found gain away)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProposalsFailed(RuntimeError):
    """GEPA's teacher never produced a usable instruction: the run did not optimize."""
