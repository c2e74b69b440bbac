"""MIPROv2 with its serial stretches run in parallel, computing what stock DSPy 3.4 computes.

Why: DSPy bootstraps the demo sets one train row at a time, writes the dataset summary and then each instruction
proposal one call after another, and draws a progress bar to stdout for every evaluation. With `num_threads`
workers those stretches leave the threads idle (the engine benchmark measured MIPROv2 at 1.84x the ideal).

- **Bootstrapping.** Before DSPy's own pass, the calls it will make are made in parallel: the demo sets are
  planned from a copy of MIPROv2's rng exactly as `create_n_fewshot_demo_sets` plans them, and each set's train
  rows run through DSPy's own teacher program in waves no larger than the successes still missing, so no row
  is run that DSPy would not run. DSPy's serial pass then reads every answer from the boundary's cache (task
  calls are at temperature 0).
- **Proposals.** The dataset summary (a chain of teacher calls that reads only the train rows) starts with the
  bootstrapping; the instruction proposals draw their tips and rollout ids from MIPROv2's rng in DSPy's order,
  then run at once.
- BootstrapFewShot (the quick `bootstrap` optimizer) gets the same prefetch of its train rows.
- **Trials.** Every evaluation runs on one pool kept for the run (dspy_evaluate.py), with no progress bar
  (MIPROv2 forces DSPy's bar on stdout; the run reports progress itself).

Anything unexpected in a prefetch only loses the head start: DSPy's own pass still makes every call it needs.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import dspy
from dspy.propose import grounded_proposer as gp
from dspy.teleprompt import mipro_optimizer_v2 as mipro
from dspy.teleprompt.bootstrap import BootstrapFewShot

from promptomatix.backends.dspy_evaluate import PooledEvaluate
from promptomatix.backends.dspy_proposals import other_tip, repeats
from promptomatix.backends.rounds import JobGroup, RowPool
from promptomatix.errors import BudgetExceeded

log = logging.getLogger(__name__)


def _in_context(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """`fn(*args)` to run in another thread under this thread's DSPy settings (LM, adapter: contextvars)."""
    return functools.partial(contextvars.copy_context().run, fn, *args)


class ParallelMIPROv2(dspy.MIPROv2):
    """dspy.MIPROv2 whose bootstrapping, summary and proposals fill the threads; same demo sets, instructions and
    trials for the same seed as stock MIPROv2, except that a proposal repeating an instruction is asked for again
    (dspy_proposals.py: repeats were trials of a program already scored)."""

    replay = False  # True when the task model and judge answer greedily: a row scored once is not run again
    rows: RowPool | None = None  # the run's row pool, when it lends one (its other evaluations share the threads)
    proposals_repeated = (0, 0)  # proposals that repeated an instruction: asked for again, dropped (dspy_proposals)

    def compile(self, student: Any, **kwargs: Any) -> Any:
        self._summary: Future[str] | None = None
        self._source: Future[str] | None = None
        self._summary_args = (kwargs.get("view_data_batch_size", 10), kwargs.get("data_aware_proposer", True))
        own = [ThreadPoolExecutor(max_workers=2, thread_name_prefix="promptomatix-side")]
        if self.rows is None:
            own.append(ThreadPoolExecutor(max_workers=self.num_threads or 1, thread_name_prefix="promptomatix-eval"))
        self._side, self._rows = own[0], self.rows or own[-1]
        try:
            compiled = super().compile(student, **kwargs)
        except BaseException:  # a Ctrl-C or a failure: do not wait for calls in flight
            for pool in own:
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        for pool in own:
            pool.shutdown(wait=True)
        return compiled

    def _bootstrap_fewshot_examples(self, program: Any, trainset: list, seed: int, teacher: Any, **kw: Any) -> Any:
        view, data_aware = self._summary_args
        # What the proposer reads besides the demo sets is made while the sets are bootstrapped: the summary (a
        # chain of teacher calls over the train rows) and the program's source (CPU that would otherwise run
        # with no call in flight). DSPy's own pass below need not wait for either.
        if data_aware:
            self._summary = self._side.submit(_in_context(gp.create_dataset_summary, trainset, view, self.prompt_model))
        self._source = self._side.submit(gp.get_dspy_source_code, program)
        zeroshot = kw["max_bootstrapped_demos"] == 0 and kw["max_labeled_demos"] == 0
        boot = mipro.BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT if zeroshot else kw["max_bootstrapped_demos"]
        labeled = mipro.LABELED_FEWSHOT_EXAMPLES_IN_CONTEXT if zeroshot else kw["max_labeled_demos"]
        max_errors = dspy.settings.max_errors if kw["max_errors"] is None else kw["max_errors"]
        plans = demo_set_plans(trainset, kw["num_fewshot_candidates"], labeled, boot, self.rng)
        prefetch_bootstrap(
            plans, program, teacher, self.num_threads or 1,
            functools.partial(BootstrapFewShot, metric=self.metric, max_errors=max_errors,
                              metric_threshold=kw["metric_threshold"], max_labeled_demos=labeled,
                              teacher_settings=self.teacher_settings, max_rounds=1),
            rows=self.rows,
        )  # fmt: skip
        return super()._bootstrap_fewshot_examples(program, trainset, seed, teacher, **kw)

    def _propose_instructions(
        self,
        program: Any,
        trainset: list,
        demo_candidates: Any,
        view_data_batch_size: int,
        program_aware_proposer: bool,
        data_aware_proposer: bool,
        tip_aware_proposer: bool,
        fewshot_aware_proposer: bool,
        num_instruct_candidates: int,
    ) -> dict[int, list[str]]:
        """DSPy's `_propose_instructions` with the summary written earlier and the proposals made at once."""
        proposer = ParallelProposer(
            program=program,
            trainset=trainset,
            prompt_model=self.prompt_model,
            view_data_batch_size=view_data_batch_size,
            program_aware=False,  # set below from the source read during the bootstrapping
            use_dataset_summary=False,  # set below from the summary written during the bootstrapping
            use_task_demos=fewshot_aware_proposer,
            num_demos_in_context=mipro.BOOTSTRAPPED_FEWSHOT_EXAMPLES_IN_CONTEXT,
            use_tip=tip_aware_proposer,
            set_tip_randomly=tip_aware_proposer,
            use_instruct_history=False,
            set_history_randomly=False,
            verbose=self.verbose,
            rng=self.rng,
            init_temperature=self.init_temperature,
        )
        proposer.num_threads = self.num_threads or 1
        if program_aware_proposer:
            try:  # as GroundedProposer does: without the source, propose without it
                source = self._source or self._side.submit(gp.get_dspy_source_code, program)
                proposer.program_code_string, proposer.program_aware = source.result(), True
            except Exception as e:
                log.info("no program source (%s); proposing without it", e)
        if data_aware_proposer:
            try:
                if self._summary is None:  # no bootstrapping step ran
                    summary = gp.create_dataset_summary(trainset, view_data_batch_size, self.prompt_model)
                else:
                    summary = self._summary.result()
                proposer.data_summary, proposer.use_dataset_summary = summary, True
            except Exception as e:  # as GroundedProposer does: go on without the summary
                log.info("no dataset summary (%s); proposing without it", e)
        candidates = proposer.propose_instructions_for_program(
            trainset=trainset, program=program, demo_candidates=demo_candidates, N=num_instruct_candidates,
            trial_logs={},
        )  # fmt: skip
        for i, pred in enumerate(program.predictors()):
            candidates[i][0] = gp.get_signature(pred).instructions
        self.proposals_repeated = (proposer.repeats_asked_again, proposer.repeats_dropped)
        return candidates

    def _optimize_prompt_parameters(self, program: Any, instruction_candidates: Any, demo_candidates: Any,
                                    evaluate: Any, *args: Any) -> Any:  # fmt: skip
        # Every trial on one pool (MIPROv2's Evaluate makes a pool per trial and forces a bar on stdout for it)
        evaluate = PooledEvaluate.like(evaluate, self._rows, replay=self.replay)
        return super()._optimize_prompt_parameters(program, instruction_candidates, demo_candidates, evaluate, *args)


def demo_set_plans(
    trainset: list, num_candidate_sets: int, max_labeled: int, max_boot: int, rng: random.Random
) -> list[tuple[list, int]]:
    """(train rows in the order DSPy walks them, bootstraps wanted) per bootstrapped set, planned as
    `dspy.teleprompt.utils.create_n_fewshot_demo_sets` plans them, from a copy of its rng (left untouched)."""
    own = random.Random()
    own.setstate(rng.getstate())
    plans = []
    for seed in range(-3, num_candidate_sets - 3):
        order = list(trainset)
        if seed == -3 or (seed == -2 and max_labeled > 0):
            continue  # zero-shot and labeled-only sets: no calls
        if seed == -1:
            plans.append((order, max_boot))
        else:
            own.shuffle(order)
            plans.append((order, own.randint(1, max_boot)))
    return plans


def prefetch_bootstrap(
    plans: list[tuple[list, int]],
    student: Any,
    teacher: Any,
    num_threads: int,
    make: Callable[..., BootstrapFewShot],
    rows: RowPool | None = None,
) -> None:
    """Run each set's train rows through DSPy's own teacher program (its demos minus the row, as DSPy does) in
    waves of the successes still missing, all sets at once on `num_threads` workers (`rows`: the run's row pool,
    when it lends one). A head start only: a failure here is left to DSPy's own pass to make again and report,
    and nothing started here is still running on return."""
    group = JobGroup(num_threads, rows)

    def attempt(program: Any, example: Any, bfs: BootstrapFewShot) -> bool:
        for _name, predictor in program.named_predictors():
            predictor.demos = [x for x in predictor.demos if x != example]
        with dspy.context(trace=[], **bfs.teacher_settings):
            prediction = program(**example.inputs())
            trace = dspy.settings.trace
        value = bfs.metric(example, prediction, trace) if bfs.metric else True
        return bool(value >= bfs.metric_threshold if bfs.metric_threshold else value)

    def one_set(order: list, wanted: int) -> None:
        bfs = make(max_bootstrapped_demos=wanted)
        bfs.trainset = order
        bfs._prepare_student_and_teacher(student, teacher)
        done = 0
        while done < wanted and order:
            wave, order = order[: wanted - done], order[wanted - done :]
            rows = [group.rows.submit(_in_context(attempt, bfs.teacher.deepcopy(), ex, bfs)) for ex in wave]
            done += sum(_succeeded(f) for f in rows)

    for order, wanted in plans:
        group.spawn(_in_context(one_set, order, wanted))
    failed = group.join()  # a Ctrl-C is raised from here
    if failed is not None:
        log.debug("bootstrap prefetch stopped: %s", failed)


def _succeeded(fut: Future[bool]) -> bool:
    """A row whose call or metric failed counts as DSPy counts it: not a success."""
    try:
        return fut.result()
    except Exception:
        return False


class _Ask(NamedTuple):
    """One proposal's arguments to `ParallelProposer._propose_one`, in its order."""

    program: Any
    predictor: Any
    pred_i: int
    demo_candidates: Any
    demo_set_i: int
    trial_logs: dict
    tip: str | None
    use_tip: bool
    rollout: int


class ParallelProposer(gp.GroundedProposer):
    """GroundedProposer whose proposals draw their tip and rollout id from the rng in DSPy's order, then run at
    once (each proposal's calls only depend on those draws, the program, the demos and the summary)."""

    num_threads = 4
    repeats_asked_again = 0  # proposals that repeated an instruction and were asked for again
    repeats_dropped = 0  # of those, the ones that repeated again (the trials choose among fewer instructions)

    def propose_instructions_for_program(
        self,
        trainset: list,
        program: Any,
        demo_candidates: Any,
        trial_logs: dict,
        N: int,
    ) -> dict[int, list[str]]:
        if self.set_history_randomly:
            self.use_instruct_history = self.rng.random() < 0.5
        if not demo_candidates:
            self.use_task_demos = False
            num_demos = N
        else:
            num_demos = max(len(demo_candidates[0]), 1)
        jobs: list[_Ask] = []
        for pred_i, predictor in enumerate(program.predictors()):
            for demo_set_i in range(num_demos)[: min(N, num_demos)]:
                tip = None
                if self.set_tip_randomly:
                    tip = gp.TIPS[self.rng.choice(list(gp.TIPS.keys()))]
                    self.use_tip = bool(tip)
                rollout = self.rng.randint(0, 10**9)  # drawn in propose_instruction_for_predictor in DSPy
                jobs.append(_Ask(program, predictor, pred_i, demo_candidates, demo_set_i, trial_logs, tip,
                                 self.use_tip, rollout))  # fmt: skip
        texts = self._run(jobs)
        proposed: dict[int, list[str]] = {}
        for args, text in zip(jobs, texts, strict=True):
            proposed.setdefault(args.pred_i, []).append(text)
        self._propose_again(program, jobs, proposed)
        return proposed

    def _run(self, jobs: list[_Ask], again: bool = False) -> list[str | None]:
        """The proposals of `jobs` at once. A proposal asked for `again` that fails is None (the run had its
        proposals already; stock MIPROv2 never makes that call), unless the budget or a Ctrl-C stopped it."""
        calls = [_in_context(self._propose_one, *args) for args in jobs]  # this thread's DSPy settings, in each

        def one(call: Callable[[], str]) -> str | None:
            try:
                return call()
            except BudgetExceeded:
                raise
            except Exception as e:
                if not again:
                    raise
                log.info("a proposal asked for again failed (%s); the repeat is dropped", e)
                return None

        with ThreadPoolExecutor(max_workers=max(1, min(self.num_threads, len(jobs)))) as ex:
            return list(ex.map(one, calls))

    def _propose_again(self, program: Any, jobs: list[_Ask], proposed: dict[int, list[str]]) -> None:
        """A proposal that repeats the predictor's instruction or an earlier proposal is asked for once more with
        another tip (and rollout); one that repeats again is dropped (`dspy_proposals.py`). Counts both."""
        predictors = list(program.predictors())
        again: list[tuple[int, int, _Ask]] = []
        for pred_i, texts in proposed.items():
            by_slot = [a for a in jobs if a.pred_i == pred_i]
            for j in repeats(texts, gp.get_signature(predictors[pred_i]).instructions):
                tip = gp.TIPS[other_tip(by_slot[j].tip, gp.TIPS)]
                again.append((pred_i, j, by_slot[j]._replace(tip=tip, use_tip=bool(tip), rollout=by_slot[j].rollout + 1)))
        if not again:
            return
        for (pred_i, j, _args), text in zip(again, self._run([a for *_, a in again], again=True), strict=True):
            if text is not None:  # a failed one stays the repeat it was, and is dropped below
                proposed[pred_i][j] = text
        for pred_i, texts in proposed.items():
            still = set(repeats(texts, gp.get_signature(predictors[pred_i]).instructions))
            proposed[pred_i] = [t for j, t in enumerate(texts) if j not in still]
            self.repeats_dropped += len(still)
        self.repeats_asked_again += len(again)

    def _propose_one(
        self, program: Any, predictor: Any, pred_i: int, demo_candidates: Any, demo_set_i: int, trial_logs: dict,
        tip: str | None, use_tip: bool, rollout: int,
    ) -> str:  # fmt: skip
        """DSPy's `propose_instruction_for_predictor` with the tip flag and rollout id drawn beforehand."""
        history = gp.create_predictor_level_history_string(program, pred_i, trial_logs, gp.MAX_INSTRUCT_IN_HISTORY)
        generator = gp.GenerateModuleInstruction(
            program_code_string=self.program_code_string,
            use_dataset_summary=self.use_dataset_summary,
            program_aware=self.program_aware,
            use_task_demos=self.use_task_demos and demo_candidates,
            use_instruct_history=self.use_instruct_history and history,
            use_tip=use_tip,
            verbose=self.verbose,
        )
        lm = self.prompt_model.copy(rollout_id=rollout, temperature=self.init_temperature)
        with dspy.context(lm=lm):
            text = generator(
                demo_candidates=demo_candidates, pred_i=pred_i, demo_set_i=demo_set_i, program=program,
                data_summary=self.data_summary, previous_instructions=history,
                num_demos_in_context=self.num_demos_in_context, tip=tip,
            ).proposed_instruction  # fmt: skip
        return gp.strip_prefix(text)
