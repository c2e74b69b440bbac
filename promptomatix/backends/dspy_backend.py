"""The `dspy` backend: stock DSPy 3.4 optimizers (MIPROv2, GEPA, BootstrapFewShot, LabeledFewShot) on a typed
program built from the task spec, behind the same contract as the meta backend.

How a run works (all state lives in the `_Run` object; DSPy is never configured globally):
1. The spec becomes a typed signature (labels are `Literal`, so JSONAdapter sends a schema enum that a local
   model's grammar enforces) whose instructions are the initial prompt; the module wraps it.
2. Every DSPy call runs under `dspy.context(lm=<task LM through our boundary>, adapter=JSONAdapter())`; the
   teacher LM (MIPROv2's prompt model, GEPA's reflection LM) goes through the same boundary, so the budget
   counts everything, and two runs in one process never share an LM.
3. The metric handed to DSPy scores with the run's MetricsManager and applies the length penalty of the program
   that made the prediction (SpecProgram tags each prediction with its own instructions + demos), so DSPy's
   search trades accuracy against prompt length as the meta backend does. GEPA gets the metric's feedback text.
4. Final selection is ours: the compiled program and the initial one are scored on valid with ctx.evaluate
   (`EvalReport.primary`: balanced accuracy for built-in classification) times each program's own penalty; the compiled one is kept only if it
   is not worse. A budget stop inside DSPy (BudgetStop) keeps MIPROv2's or GEPA's best fully evaluated trial
   when it beat the initial program on valid (dspy_rescue.py; saved as the best so far as the search runs, so
   Ctrl-C keeps it too), else the initial program.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dspy

from promptomatix.backends.base import BackendResult, CandidateRecord, RunContext, selection_score
from promptomatix.backends.dspy_modules import (
    PENALTY_ATTR,
    ModuleFactory,
    SpecProgram,
    build_signature,
    dump_program,
    instructions_text,
    penalty_text,
    program_demos,
    read_text,
    register_module,
    render_program,
    set_demos,
)
from promptomatix.backends.dspy_optimizers import optimizer_failed
from promptomatix.backends.dspy_prints import dspy_output_to_log
from promptomatix.backends.dspy_programs import (
    _module_factory,
    adapter_for,
    adapter_name_for,
    build_program,
    load_program,
)
from promptomatix.backends.dspy_rescue import TeacherStopped, TrialLog, keep_after_stop, save_best
from promptomatix.backends.dspy_settings import (
    DSPySettings,
    normalize_optimizer_name,
)
from promptomatix.backends.prompt import PromptCandidate, max_tokens_for
from promptomatix.backends.rounds import RowPool, beside
from promptomatix.errors import BudgetExceeded, BudgetStop, ConfigurationError, MetricError
from promptomatix.lm.dspy_engine import make_dspy_lm
from promptomatix.lm.stoppable import StoppableLM
from promptomatix.run_guard import require_answers

log = logging.getLogger(__name__)

__all__ = [
    "DSPyOptimizer",
    "DSPySettings",
    "build_signature",
    "load_program",
    "normalize_optimizer_name",
    "register_module",
    "render_program",
]


# -- the optimizer ---------------------------------------------------------------------------------------------


class _Scored:
    def __init__(self, cid: int, origin: str, program: SpecProgram, note: str = "") -> None:
        self.id = cid
        self.origin = origin
        self.program = program
        self.valid_raw: float | None = None
        self.valid_penalized: float | None = None
        self.minibatch: float | None = None
        self.note = note


class DSPyOptimizer:
    """`compile(ctx, initial, data)` → BackendResult. Hyperparameters here, data in compile; `initial` is
    never mutated, and only `data.train` / `data.valid` are read."""

    name = "dspy"

    def __init__(
        self,
        settings: DSPySettings | None = None,
        modules: Mapping[str, ModuleFactory] | None = None,
        tools: Sequence[Any] = (),
    ) -> None:
        self.settings = settings or DSPySettings()
        self.modules = dict(modules or {})
        self.tools = list(tools)
        if self.settings.module != "pot":  # pot's Deno check belongs to compile time
            _module_factory(self.settings.module, self.modules, self.tools)  # fail fast on a typo

    def compile(self, ctx: RunContext, initial: PromptCandidate, data: Any) -> BackendResult:
        """DSPy prints its progress ("Bootstrapped 3 full traces…") and appends every prediction, data rows and
        all, to the global `dspy.settings.trace`: here this compile's prints go to our log (without swapping
        stdout for other threads: dspy_prints.py) and the trace is this run's own, so a library caller's stdout
        and DSPy state are as they were."""
        with dspy_output_to_log(), dspy.context(trace=[]):
            return _Run(self, ctx, initial, data).run()


class _Run:
    """One compile: the run's LMs, adapter, programs and scores. Nothing outlives it but the result."""

    def __init__(self, opt: DSPyOptimizer, ctx: RunContext, initial: PromptCandidate, data: Any) -> None:
        self.opt = opt
        self.s = opt.settings
        self.ctx = ctx
        self.spec = ctx.spec
        self.initial = initial
        self.train_rows = list(data.train)
        self.valid_rows = list(data.valid)
        if not self.valid_rows:
            self.valid_rows = self.train_rows
        if not self.train_rows:
            self.train_rows = self.valid_rows
        if not self.valid_rows:
            raise ConfigurationError(
                "the dspy backend needs train or valid rows", hint="pass data or a --synthetic-data-size above 0"
            )
        self.task_key = ctx.metrics.resolve(self.spec.task_type)
        self.adapter_name = adapter_name_for(self.s, ctx.task_lm.model)
        self.adapter = adapter_for(self.s, self.spec, ctx.task_lm.model)
        extra = {"cot": 384, "react": 512, "pot": 512}.get(self.s.module, 0)
        self.task_calls = StoppableLM(ctx.task_lm)  # stopped when the baseline beside the optimizer fails
        self.task_lm = make_dspy_lm(self.task_calls, temperature=0.0, max_tokens=max_tokens_for(self.spec) + extra)
        self.teacher_lm = make_dspy_lm(
            ctx.teacher_lm, temperature=self.s.teacher_temperature, max_tokens=512
        )  # long proposals only slow every later eval
        self.num_threads = self.s.num_threads or ctx.num_threads
        n = len(self.train_rows) + len(self.valid_rows)
        self.max_errors = ctx.max_errors if ctx.max_errors is not None else max(10, 10 * n)
        self.trainset = [self._example(r) for r in self.train_rows]
        self.valset = [self._example(r) for r in self.valid_rows]
        self.tried: list[_Scored] = []
        self.resolved: dict[str, Any] = {}
        self.baseline_report: Any = None
        self.rows: RowPool | None = None  # lent to the optimizer, so the baseline can be scored beside it
        self.replay = ctx.boundary.greedy("task", "judge")  # a row answered once is a free cache hit
        self.trials = TrialLog(self)  # DSPy's full-valid trials: a stop inside the search keeps the best
        self.optimizer_note = ""  # what the optimizer swallowed (GEPA's failed proposals), for the stop reason
        self._saved = (threading.Lock(), [-1])  # the round last checkpointed: a later save never goes back

    # -- helpers ------------------------------------------------------------------------------------------
    def _example(self, row: Mapping[str, Any]) -> dspy.Example:
        names = [*self.spec.input_names, *self.spec.output_names]
        return dspy.Example(**{k: row[k] for k in names if k in row}).with_inputs(*self.spec.input_names)

    def context(self, lm: Any = None) -> Any:
        return dspy.context(lm=lm or self.task_lm, adapter=self.adapter)

    def predictor(self, program: SpecProgram) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """`row -> {output: value}` running the program on the task LM; a budget stop becomes BudgetExceeded."""
        outputs = self.spec.output_names
        inputs = self.spec.input_names

        def predict(row: dict[str, Any]) -> dict[str, Any]:
            kwargs = {k: row[k] for k in inputs if k in row}
            try:
                with self.context(), dspy.context(trace=[]):  # scoring only: DSPy's global trace stays the user's
                    pred = program(**kwargs)
            except BudgetStop as stop:
                raise stop.exceeded from None
            return {name: pred.get(name) if hasattr(pred, "get") else None for name in outputs}

        return predict

    def penalty(self, program: SpecProgram) -> float:
        return self.ctx.metrics.penalty(penalty_text(program))

    def score_valid(self, sc: _Scored) -> None:
        report = self.ctx.evaluate(self.predictor(sc.program), self.valid_rows, ci=False, pool=self.rows)  # points
        self.baseline_report = self.baseline_report or report  # the first scoring is the initial program's
        sc.valid_raw = selection_score(report)
        sc.valid_penalized = sc.valid_raw * self.penalty(sc.program)
        self.ctx.report_candidate(self.record(sc))

    def metric(self, *, feedback: bool = False) -> Callable[..., Any]:
        """The metric DSPy sees: the run's MetricsManager score × the length penalty of the program that made
        `pred` (read from SpecProgram's tag; unpenalized when a prediction carries none). With feedback=True it
        returns dspy.Prediction(score, feedback) for GEPA, with the run's human feedback appended."""
        metrics, key = self.ctx.metrics, self.task_key
        human = "; ".join(self.ctx.human_feedback)

        def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
            try:
                result = metrics.score(key, gold, pred, prompt_text=getattr(pred, PENALTY_ATTR, None))
            except BudgetExceeded as e:  # an LM judge inside DSPy: DSPy would swallow a plain exception
                raise BudgetStop(e) from e
            if not feedback:
                return result.score
            text = result.feedback or f"score {result.score:.2f}"
            if human:
                text += f" (user feedback on the prompt: {human})"
            return dspy.Prediction(score=result.score, feedback=text)

        return metric

    def add(self, origin: str, program: SpecProgram, note: str = "") -> _Scored:
        sc = _Scored(len(self.tried), origin, program, note)
        self.tried.append(sc)
        return sc

    # -- the run ------------------------------------------------------------------------------------------
    def run(self) -> BackendResult:
        s, ctx = self.s, self.ctx
        start = build_program(self.spec, s, self.initial.system_text(), modules=self.opt.modules, tools=self.opt.tools)
        set_demos(start, self.spec, self.initial.demos)
        base = self.add("initial", start)
        label = f"{s.optimizer} ({s.search_type}) on a {s.module} module"
        ctx.emit("baseline", f"dspy backend, {label}: scoring the initial program on {len(self.valid_rows)} rows")
        if self.baseline_can_run_beside():
            self.rows = RowPool(self.num_threads)
        try:
            outcome = self.optimize_beside_baseline(start, base, label)
            best, stop_reason, rounds = self.select(outcome, base)
        finally:
            if self.rows is not None:
                self.rows.shutdown(wait=False)

        self.checkpoint(rounds, best, base)
        result = BackendResult(
            backend=self.opt.name,
            prompt=render_program(best.program, self.adapter),
            instructions=instructions_text(best.program),
            demos=program_demos(best.program),
            valid_raw=best.valid_raw or 0.0,
            valid_penalized=best.valid_penalized or 0.0,
            initial_prompt=render_program(base.program, self.adapter),
            initial_valid_raw=base.valid_raw or 0.0,
            initial_valid_penalized=base.valid_penalized or 0.0,
            candidates=[self.record(t) for t in self.tried],
            rounds_completed=rounds,
            stop_reason=stop_reason,
            program_json=dump_program(best.program, s.module, self.adapter_name),
            settings={**s.model_dump(), **self.resolved},
        )
        ctx.emit("done", f"dspy backend done: valid {result.valid_penalized:.3f} ({stop_reason})",
                 best_score=result.valid_penalized)  # fmt: skip
        return result.with_predictors(self.predictor(best.program), self.predictor(base.program))

    def select(self, outcome: SpecProgram | BaseException, base: _Scored) -> tuple[_Scored, str, int]:
        """(best, stop reason, rounds): the compiled program if it scores at least the initial one on valid."""
        s, ctx = self.s, self.ctx
        best, stop_reason, rounds = base, "completed", 0
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            compiled = outcome
            cand = self.add(s.optimizer, compiled)
            self.score_valid(cand)
            rounds = 1
            ctx.emit("candidate", f"compiled program valid score {cand.valid_penalized:.3f}", round=1,
                     total_rounds=1, best_score=cand.valid_penalized)  # fmt: skip
            if self._better_or_equal(cand, base):
                best = cand
            else:
                worse = "<" if (cand.valid_penalized or 0.0) < (base.valid_penalized or 0.0) - 1e-9 else "ties with"
                stop_reason = (
                    f"compiled program scored {cand.valid_penalized:.3f} {worse} initial {base.valid_penalized:.3f} "
                    "on valid; kept the initial program"
                )
                cand.note = "below the initial program on valid: not selected"
                ctx.emit("final", stop_reason, best_score=base.valid_penalized)
            stop_reason += f"; {self.optimizer_note}" if self.optimizer_note else ""  # what DSPy swallowed
        except (BudgetStop, BudgetExceeded) as e:
            exc = e.exceeded if isinstance(e, BudgetStop) else e
            ctx.emit("stopped", f"budget reached inside DSPy ({exc.message})")
            best, stop_reason, rounds = keep_after_stop(self, base, f"budget: {exc.message}")
        except TeacherStopped as e:  # some proposals worked before the teacher failed: keep what was found
            ctx.emit("stopped", e.reason)
            best, stop_reason, rounds = keep_after_stop(self, base, e.reason)
        except (ConfigurationError, MetricError):
            raise
        except Exception as e:  # DSPy gave up: the run did not optimize, so it failed (exit 1), in one line
            log.debug("DSPy %s failed", s.optimizer, exc_info=True)
            raise optimizer_failed(s.optimizer, e, ctx.boundary) from e
        return best, stop_reason, rounds

    def optimize_beside_baseline(self, start: SpecProgram, base: _Scored, label: str) -> SpecProgram | BaseException:
        """The compiled program, or the optimizer's exception. With a row pool lent to the optimizer, the initial
        program is scored on valid while the optimizer starts (its bootstrapping and proposals leave threads
        idle), on the same pool, so calls in flight never exceed `num_threads`. The baseline's own failure (the
        budget, a model that never answers) is raised: without a baseline there is nothing to return."""
        if self.rows is None:
            self.baseline(base)
            self.ctx.emit("round", f"running DSPy {label}", round=1, total_rounds=1, best_score=base.valid_penalized)
            return self.try_optimize(start)
        self.ctx.emit("round", f"running DSPy {label}", round=1, total_rounds=1)
        outcome, _ = beside(self.rows, lambda: self.baseline_or_abort(base), lambda: self.try_optimize(start))
        return outcome

    def baseline_or_abort(self, base: _Scored) -> None:
        """The baseline beside the optimizer; when it fails (meta's rule: all its calls failed) the optimizer stops."""
        try:
            self.baseline(base)
        except BaseException as e:
            self.task_calls.stop(e)
            self.rows.aborted.set() if self.rows is not None else None
            raise

    def baseline_can_run_beside(self) -> bool:
        """MIPROv2 and quick BootstrapFewShot send every task call through a pool the run can lend them, so the
        baseline can share it; only when no budget can run out under it (the optimizer's calls must never leave
        the baseline without its own: a run that cannot finish its search still keeps the initial program)."""
        s = self.s
        quick_bootstrap = s.optimizer == "bootstrap" and s.search_type == "quick" and s.num_candidates is None
        if not (s.optimizer == "miprov2" or quick_bootstrap):
            return False
        return self.ctx.boundary.surely_affords(s.estimate_calls(len(self.train_rows), len(self.valid_rows)))

    def baseline(self, base: _Scored) -> None:
        """Score the initial program on valid; then its checkpoint, unless the run is being aborted."""
        self.score_valid(base)  # BudgetExceeded propagates
        require_answers(self.baseline_report, self.ctx.boundary, "scoring the initial program")
        self.ctx.emit("baseline", f"initial valid score {base.valid_penalized:.3f}", best_score=base.valid_penalized)
        if self.rows is None or not self.rows.aborted.is_set():
            self.checkpoint(0, base, base)

    def try_optimize(self, start: SpecProgram) -> SpecProgram | BaseException:
        """The compiled program, or what the optimizer raised (a Ctrl-C propagates)."""
        try:
            return self.optimize(start)
        except (Exception, BudgetStop) as e:
            return e

    def checkpoint(self, rnd: int, best: _Scored, base: _Scored) -> None:
        """Best-so-far for the session, as this backend made it (dspy_rescue.save_best)."""
        save_best(self, rnd, best, base)

    def _better_or_equal(self, cand: _Scored, base: _Scored) -> bool:
        """Strictly better on penalized valid, or equal and not longer (ties go to the shorter prompt). Never a
        program with no raw gain that reads more words, its demos included: the λ penalty counts instructions
        only, and MIPROv2's 3 demos (35 words more) won at equal raw quality (as the meta backend's rule)."""
        c, b = cand.valid_penalized or 0.0, base.valid_penalized or 0.0
        more = len(read_text(cand.program).split()) - len(read_text(base.program).split())
        if (cand.valid_raw or 0.0) <= (base.valid_raw or 0.0) + 1e-9 and more > 0:
            return False
        if c > b + 1e-9:
            return True
        return c >= b - 1e-9 and more <= 0

    def record(self, t: _Scored) -> CandidateRecord:
        text = penalty_text(t.program)
        return CandidateRecord(
            id=t.id,
            round=0 if t.origin == "initial" else 1,
            origin=t.origin,
            prompt=render_program(t.program, self.adapter),
            instructions=instructions_text(t.program),
            n_demos=len(program_demos(t.program)),
            length=self.ctx.metrics.length(text),
            minibatch_score=t.minibatch,
            valid_raw=t.valid_raw,
            valid_penalized=t.valid_penalized,
            note=t.note,
            program_json=dump_program(t.program, self.s.module, self.adapter_name) if t.origin == "initial" else None,
        )

    # -- optimizers ---------------------------------------------------------------------------------------
    def optimize(self, start: SpecProgram) -> SpecProgram:
        from promptomatix.backends import dspy_optimizers

        fn = dspy_optimizers.OPTIMIZERS[self.s.optimizer]
        with self.context():
            compiled = fn(self, start.deepcopy())
        if not isinstance(compiled, SpecProgram):  # pragma: no cover - DSPy returns the student's class
            raise RuntimeError(f"DSPy returned a {type(compiled).__name__}, not the program it was given")
        return compiled
