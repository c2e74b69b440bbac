"""The dry run's expected LM calls of the dspy backend: what DSPy 3.4's optimizers (and gepa 0.1) do, counted at our
LM boundary, where a row a program has already answered is a free cache hit and every teacher call is new.

`DSPySettings.estimate_calls` stays the upper bound (every scored row a new call); this is the typical run:
- MIPROv2: bootstrapping the demo sets (tries train rows until enough traces pass), the teacher's data summary and
  three calls per proposed instruction, the default program on valid (our baseline: cached), then trials over
  instruction × demo-set combinations: optuna's random startup trials exactly as the run's seed draws them, TPE's
  later ones as likely-new draws. A combination drawn again is cached, so only distinct new combinations cost
  (with minibatches: the rows not seen before, plus the periodic full evaluations).
- GEPA: its metric-call budget is spent in iterations of one reflection (teacher) and the parent and the child on
  a train minibatch; the child is new (its rows are calls), the parent's rows are cached after its first pass over
  train. Typical run: one child beats its parent and is scored on valid. More accepted children cost a few more.
- BootstrapFewShot: train rows until enough traces pass the metric (assumed 3 in 4), then the compiled program on
  valid. With random search: every candidate program on valid (the zero-shot one is the initial: cached).
Kept free of DSPy imports: a dry run never imports DSPy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promptomatix.backends.dspy_settings import DSPySettings

#: Share of bootstrapping attempts whose trace passes the metric (unknowable before the run; 1.0 with a perfect
#: teacher, about 0.3 measured with a 135M model on question types).
TRACE_PASS = 0.75
#: Share of ReAct children whose changed step instruction changes the step's answer, so that the extract call after
#: it is new too (a child that changes only the extract instruction reuses the step's cached call). Assumed.
REACT_STEP_CHANGES = 0.5
GEPA_ACCEPTED = 1  # children that beat their parent on the minibatch and get a full valid evaluation, typically
_PREDICTORS = {"react": 2, "pot": 3}  # dspy.Predict objects in the built-in modules (one for predict and cot)
_MIPRO_TEACHER_PER_PROPOSAL = 3  # program description, module description, instruction (program-aware proposer)
_MIPRO_FULL_EVAL_STEPS = 5  # DSPy's minibatch_full_eval_steps
_MIPRO_MIN_MINIBATCH = 50  # with auto, minibatching starts above this many valid rows
#: TPE draws a new program TPE_NEW times as often as a uniform draw would: it favours programs near the best
#: (0.76–0.84 over 20 seeds with random program scores, for DSPy's light/medium/heavy sizes).
TPE_NEW = 0.8
_OPTUNA_STARTUP = 10  # optuna TPESampler's n_startup_trials: trials before that many are drawn at random
_SEED: ContextVar[int | None] = ContextVar("pmx_estimate_seed", default=None)


@dataclass
class Expected:
    """Expected LM calls of the optimizer stage, and what the dry run says about them."""

    calls: float = 0.0
    lines: list[str] = field(default_factory=list)


def attempts(demos: float, n_train: int) -> float:
    """Train rows BootstrapFewShot runs until `demos` traces pass the metric (it stops there)."""
    return min(float(n_train), demos / TRACE_PASS) if demos > 0 else 0.0


def data_summary_calls(n_train: int, batch: int = 10, max_calls: int = 10) -> int:
    """DSPy's dataset summary: one call on the first batch, one per later batch (at most 9), one to summarize."""
    later = len(range(batch, n_train, batch))
    return 1 + min(later, max_calls - 1) + 1


@contextmanager
def run_seed(seed: int | None) -> Iterator[None]:
    """The run's seed, for the estimates made inside (the dry run sets it): MIPROv2's random trials follow it."""
    token = _SEED.set(seed)
    try:
        yield
    finally:
        _SEED.reset(token)


def trial_schedule(trials: int, minibatch: bool, steps: int = _MIPRO_FULL_EVAL_STEPS) -> tuple[list[bool], int]:
    """Per MIPROv2 trial: drawn at random (optuna's startup trials) or by TPE; and the full evaluations the
    minibatch loop makes (each one adds a trial, so it shifts the numbering and ends the startup sooner)."""
    adjusted = trials + trials // steps + 1 + (1 if trials % steps else 0)
    done, fulls, startup = 1, 0, []  # the default program is trial 0, added before the loop
    for _ in range(trials):
        startup.append(done < _OPTUNA_STARTUP)
        trial_num = done + 1
        done += 1
        if minibatch and (trial_num % (steps + 1) == 0 or trial_num == adjusted - 1):
            fulls += 1
            done += 1
    return startup, fulls


def startup_draws(seed: int, choices: list[int], n: int) -> list[tuple[int, ...]] | None:
    """optuna's startup trials for TPESampler(seed): its RandomSampler draws k uniforms from numpy's
    RandomState(seed) for each categorical parameter of k > 1 choices and takes the largest (optuna 4–5)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with DSPy
        return None
    rs = np.random.RandomState(seed)
    return [tuple(int(np.argmax(rs.uniform(0.0, 1.0, k))) if k > 1 else 0 for k in choices) for _ in range(n)]


def mipro_trials(choices: list[int], trials: int, v: int, b: int, minibatch: bool, seed: int | None = None,
                 parts: int = 1) -> tuple[float, float, int]:  # fmt: skip
    """(rows scored for the first time, new programs, full evaluations) in MIPROv2's trials. A program is one
    combination of parameter choices; all-zero is the default, already scored. With the seed the startup trials
    are the ones optuna draws and TPE's are new TPE_NEW as often as uniform draws; without it, all are uniform.

    `parts` > 1 (ReAct's step and extract predictors): a row is one call per predictor, and a predictor's call is
    new only when its own choices or an earlier predictor's are (otherwise its request is a cache hit), so rows
    are counted per predictor, by the prefix of choices up to it."""
    startup, fulls = trial_schedule(trials, minibatch)
    draws = startup_draws(seed, choices, sum(startup)) if seed is not None else None
    width = len(choices) // parts
    cuts = [width * (k + 1) for k in range(parts)]
    seen: list[dict[tuple[int, ...], int]] = [{tuple(0 for _ in range(c)): 0} for c in cuts]
    n_seen = [1.0] * parts
    rows, new = 0.0, 0.0
    batch, keep = (b, 1 - b / v) if minibatch else (v, 0.0)  # keep: a repeat's share of rows not yet scored
    for i, random_trial in enumerate(startup):
        for k, cut in enumerate(cuts):
            if draws is not None and random_trial:
                c = draws[i][:cut]
                if any(c):  # the default's rows are all cached
                    times = seen[k].get(c, 0)  # times this prefix was scored before
                    rows += batch * keep**times if times else batch
                    new += not times and k == parts - 1
                    seen[k][c] = times + 1
                n_seen[k] = float(len(seen[k]))
            else:
                combos = math.prod(choices[:cut])
                p_new = (combos - n_seen[k]) / combos * (1.0 if draws is None else TPE_NEW)
                rows += batch * (p_new + (n_seen[k] - 1) / combos * keep)
                new += p_new if k == parts - 1 else 0.0
                n_seen[k] += p_new
    return (rows + parts * fulls * (v - b)) / parts, new, fulls


def mipro(s: DSPySettings, n_train: int, n_valid: int, m: int) -> Expected:
    from promptomatix.backends.dspy_settings import _AUTO_N, _AUTO_VAL, _MIPRO_MINIBATCH

    preds = _PREDICTORS.get(s.module, 1)
    boot, labeled = s.demos
    zeroshot = boot == 0 and labeled == 0
    n, trials = s.mipro_counts(preds)
    if n is None or trials is None:  # DSPy's auto mode
        n = _AUTO_N[s.auto]
        n_instr, n_sets = (n if zeroshot else int(n * 0.5)), n
        trials = int(max(2 * preds * (1 if zeroshot else 2) * math.log2(n), 1.5 * n))
        v = min(n_valid, _AUTO_VAL[s.auto])
        minibatch = v > _MIPRO_MIN_MINIBATCH
    else:
        n_instr = n_sets = n
        v = n_valid
        minibatch = (s.minibatch_size or _MIPRO_MINIBATCH) < n_valid
    b = min(s.minibatch_size or _MIPRO_MINIBATCH, v)
    boot_eff, labeled_eff = (3, 0) if zeroshot else (boot, labeled)  # zero-shot still bootstraps, for the proposer
    shuffled = max(0, n_sets - 3) + (1 if labeled_eff == 0 else 0)  # without labeled demos seed -2 bootstraps too
    boot_calls = m * (attempts(boot_eff, n_train) + shuffled * attempts((1 + boot_eff) / 2, n_train))
    proposals = min(n_instr, n_sets)
    teacher = data_summary_calls(n_train) + _MIPRO_TEACHER_PER_PROPOSAL * preds * proposals
    choices = [n_instr] * preds if zeroshot else [n_instr, n_sets] * preds
    parts = preds if s.module == "react" else 1  # ReAct: a predictor whose choices are unchanged is a cache hit
    rows, new, fulls = mipro_trials(choices, trials, v, b, minibatch, _SEED.get(), parts)
    trial_calls = m * rows
    on = f"minibatches of {b} of {v} valid rows and {fulls} full evaluations" if minibatch else f"{v} valid rows"
    how = f"{trials} trials on {on}, about {new:.1f} distinct new programs (a repeat's rows are cached)"
    final = m * (n_valid - v)  # our scoring of the compiled program on the valid rows DSPy did not use
    calls = boot_calls + teacher + trial_calls + final
    return Expected(calls, [
        f"MIPROv2: {n_sets} demo sets × {n_instr} instructions; {how}; {teacher} teacher calls; about "
        f"{boot_calls:.0f} bootstrapping calls (typical run: 3 in 4 traces pass the metric)",
    ])  # fmt: skip


def gepa_auto_budget(auto: str, n_valid: int, n_predictors: int = 1) -> int:
    """DSPy's GEPA.auto_budget for our presets."""
    from promptomatix.backends.dspy_settings import _AUTO_N

    n = _AUTO_N[auto]
    trials = int(max(2 * (n_predictors * 2) * math.log2(n), 1.5 * n))
    fulls = (trials + 1) // 5 + 1 + (1 if trials < 5 else 0)
    return n_valid + n * 5 + trials * 35 + fulls * n_valid


def gepa(s: DSPySettings, n_train: int, n_valid: int, m: int) -> Expected:
    from promptomatix.backends.dspy_settings import _GEPA_MINIBATCH

    preds = _PREDICTORS.get(s.module, 1)
    budget = s.max_metric_calls or gepa_auto_budget(s.auto, n_valid, preds)
    mb = min(s.minibatch_size or _GEPA_MINIBATCH, max(1, n_train))
    accepted = GEPA_ACCEPTED if budget > 2 * n_valid else 0
    iterations = max(0.0, (budget - n_valid - accepted * n_valid) / (2 * mb))
    # a child changes one predictor's instruction (round robin): in ReAct the other's call is often a cache hit
    child = 1 + REACT_STEP_CHANGES / preds if s.module == "react" else m
    calls = iterations + child * (iterations * mb + accepted * n_valid) + m * min(n_train, iterations * mb)
    return Expected(calls, [
        f"GEPA: a budget of {budget} metric calls; about {iterations:.0f} reflections (one teacher call each), each "
        f"scoring a new instruction on {mb} train rows; typical run: {accepted} beats its parent and is scored on "
        f"{n_valid} valid rows (rows a program already answered are cached)",
    ])  # fmt: skip


def bootstrap(s: DSPySettings, n_train: int, n_valid: int, m: int) -> Expected:
    from promptomatix.backends.dspy_settings import _RS_CANDIDATES

    boot, _labeled = s.demos
    if s.search_type == "quick" and s.num_candidates is None:
        boot_calls = m * attempts(boot, n_train)
        return Expected(boot_calls + m * n_valid, [
            f"BootstrapFewShot: train rows until {boot} traces pass the metric, about {boot_calls:.0f} calls "
            "(typical run: 3 in 4 pass); then the compiled program on valid",
        ])  # fmt: skip
    n = s.num_candidates or _RS_CANDIDATES[s.search_type]
    # DSPy's random search: seed -1 wants every demo, seed i >= 0 wants random.Random(i).randint(1, boot)
    wanted = [boot] + [random.Random(i).randint(1, boot) for i in range(n)] if boot else []
    boot_calls = sum(attempts(w, n_train) for w in wanted)
    calls = m * (boot_calls + (n + 2) * n_valid)  # n + 3 programs on valid; the zero-shot one is cached
    return Expected(calls, [
        f"BootstrapFewShotWithRandomSearch: {n + 3} programs, {n + 2} of them new on {n_valid} valid rows, about "
        f"{boot_calls:.0f} bootstrapping calls (typical run: 3 in 4 traces pass the metric)",
    ])  # fmt: skip


def held_out_row_calls(settings: object, per_row: int = 1) -> tuple[int, int]:
    """LM calls one held-out row costs (initial prompt, optimized prompt): the module's typical forward pass
    (ReAct: a step and the extract) plus a judge's score when one scores each row (`per_row` 2). ReAct with
    LabeledFewShot: labelled demos carry no trajectory, so only the extract call changes; the step is cached."""
    fn = getattr(settings, "typical_calls_per_example", None)
    m = int(fn()) if callable(fn) else 1
    labeled_react = getattr(settings, "module", "") == "react" and getattr(settings, "optimizer", "") == "labeled"
    return m + per_row - 1, (1 if labeled_react else m) + per_row - 1


def expected_dspy(s: DSPySettings, n_train: int, n_valid: int) -> Expected:
    """The optimizer stage: the initial program on valid, the optimizer, the compiled program on valid (each row
    at the calls a typical forward pass makes: ReAct's most, 6, made its estimate 1.6-3.8x the calls a run made)."""
    m = s.typical_calls_per_example()
    t, v = max(0, n_train), max(1, n_valid)
    if not t:
        t = v  # the backend optimizes on valid when there are no train rows
    body = {"miprov2": mipro, "gepa": gepa, "bootstrap": bootstrap}.get(s.optimizer)
    if body is None:  # LabeledFewShot: no calls of its own; the compiled program (new demos) on valid
        est = Expected(held_out_row_calls(s)[1] * v, [f"LabeledFewShot: {s.demos[1]} train rows as demos; no calls of its own"])
    else:  # each body counts our scoring of the compiled program (cached where DSPy scored it on valid already)
        est = body(s, t, v, m)
    est.calls += m * v  # the initial program on valid (the baseline every optimizer starts from)
    return est
