"""The dry run's expected LM calls against the calls a fake-model run really makes, per optimizer: a change to an
optimizer (ours or DSPy's) that moves its calls away from the estimate fails here. Ratio = estimated / actual calls
(cached calls are free and not counted), goal 0.85–1.15, as in benchmarks/estimate.py (RESULTS.md § 5)."""

from __future__ import annotations

import pytest

from benchmarks.estimate import _run, measure, quiet_dspy
from promptomatix.backends.dspy_estimate import gepa_auto_budget, mipro_trials, startup_draws, trial_schedule
from promptomatix.backends.dspy_settings import DSPySettings
from promptomatix.backends.plan import search_plan_lines

LIMIT_S = 240  # each case takes seconds with the fake models; a hang fails instead of blocking the suite


pytestmark = pytest.mark.usefixtures("time_limit")  # conftest.py: SIGALRM after LIMIT_S


@pytest.fixture(autouse=True)
def _quiet():
    quiet_dspy()


def _within(row: dict) -> None:
    assert row["ratio"] is not None and 0.85 <= row["ratio"] <= 1.15, (
        f"{row['config']} {row['sizes']} max_calls={row['max_calls']}: estimated {row['estimated']} vs actual "
        f"{row['actual_calls']} calls ({row['calls_by_role']}), ratio {row['ratio']}"
    )


@pytest.mark.parametrize("config", ["dspy-miprov2", "dspy-gepa", "dspy-bootstrap", "dspy-bootstrap-rs", "dspy-labeled"])
def test_each_dspy_optimizer_estimate_is_within_15_percent_of_a_fake_run(config):
    _within(measure(config, (12, 12, 20)))


def test_miprov2_with_minibatches_and_full_evaluations_is_within_15_percent():
    # Above 50 valid rows DSPy's auto mode scores trials on minibatches of 35 with periodic full evaluations.
    row = measure("dspy-miprov2", (16, 60, 8))
    assert "minibatches of 35 of 60 valid rows" in " ".join(row["search_plan"])
    _within(row)


def test_a_budget_that_stops_gepa_is_estimated_as_the_budget_plus_one_test_scoring():
    # The budget leaves 150 - 1 (spec) - 40 (held back for the test) = 109 calls; a typical GEPA run needs ~300, so
    # DSPy is stopped, the initial prompt is kept and the test rows are scored once.
    row = measure("dspy-gepa", (12, 12, 20), max_calls=150)
    assert "budget" in row["stop_reason"]
    assert row["estimated"]["final_test"] == 20
    assert any("would be stopped" in line for line in row["search_plan"])
    _within(row)


def test_the_dry_run_says_what_a_typical_dspy_run_assumes():
    lines = search_plan_lines(DSPySettings(optimizer="gepa"), 12, 12)
    assert len(lines) == 1 and "typical run" in lines[0] and "budget of 428 metric calls" in lines[0]
    assert "3 in 4" in search_plan_lines(DSPySettings(optimizer="bootstrap"), 12, 12)[0]
    assert "distinct new programs" in search_plan_lines(DSPySettings(), 12, 12)[0]


def test_gepa_budget_is_dspys_own_auto_budget():
    import dspy

    for v in (1, 12, 48, 300):
        for auto, n in (("light", 6), ("medium", 12), ("heavy", 18)):
            assert gepa_auto_budget(auto, v) == dspy.GEPA.auto_budget(None, 1, n, v)


def test_mipro_trials_count_only_programs_not_scored_before():
    rows, new, fulls = mipro_trials([1, 1], 10, 12, 12, False)
    assert (rows, new, fulls) == (0.0, 0.0, 0)  # the default program only: every trial is cached
    rows, new, _ = mipro_trials([3, 6], 10_000, 12, 12, False)
    assert new == pytest.approx(17) and rows == pytest.approx(17 * 12)  # at most every program but the default


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_startup_trials_are_the_ones_optuna_draws_for_the_seed(seed):
    # MIPROv2 runs optuna's TPESampler(seed, multivariate) after adding the default program as a trial; the next
    # nine trials are its random startup draws. An optuna change that moves them fails here.
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = {"i": CategoricalDistribution(range(3)), "d": CategoricalDistribution(range(6))}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True))
    study.add_trial(optuna.trial.create_trial(params={"i": 0, "d": 0}, distributions=dist, value=0.5))
    drawn: list[tuple[int, int]] = []
    study.optimize(lambda t: drawn.append((t.suggest_categorical("i", range(3)), t.suggest_categorical("d", range(6))))
                   or 0.5, n_trials=9)  # fmt: skip
    assert startup_draws(seed, [3, 6], 9) == drawn
    assert trial_schedule(10, False)[0] == [True] * 9 + [False]


@pytest.mark.parametrize("config", ["meta-quick", "meta-moderate", "meta-heavy"])
def test_the_meta_estimate_is_within_15_percent_of_a_fake_run(config):
    _within(measure(config, (12, 12, 20)))


def test_the_meta_plan_fitted_to_a_budget_is_estimated_within_15_percent():
    # The case: 160 rows split 64/48/48, --max-calls 400. The fitted plan (1 round of 4 candidates) runs
    # whole: every slot gives a new candidate that reaches the valid split (the estimate said 0.84 of it before).
    row = measure("meta-quick", (64, 48, 48), max_calls=400)
    assert row["rounds"] == 1 and any("fitted to the budget" in line for line in row["search_plan"])
    _within(row)
    assert 0.85 <= row["optimize_ratio"] <= 1.15


def test_the_dry_run_says_where_it_assumes_a_typical_run():
    from promptomatix.backends.meta import MetaSettings
    from promptomatix.backends.plan import plan_meta

    line = plan_meta(MetaSettings.preset("heavy"), 12, 12, None).describe()[0]
    assert "in a typical run (patience typically stops it after 5 of 8 rounds)" in line
    stopped = _run("dspy-gepa", (12, 12, 20), dry_run=True, max_calls=150, seed=0)  # its run: the test above
    assert "held-out test: 20 rows, the initial prompt only (the budget stops the search)" in stopped.search_plan


def test_the_suite_sets_each_part_against_the_dry_run_of_its_own_seed():
    """MIPROv2's trials follow the seed, so a part run with seed 1 is compared with the estimate for seed 1 (it was
    compared with seed 0's, which made seeds 1 and 2 look 1.2-1.4x over-estimated, RESULTS §7)."""
    from benchmarks.engine import synthetic_rows
    from benchmarks.suite_estimate import dry_estimate

    task = {"description": "Classify the sentiment of a movie review as positive or negative",
            "task_type": "classification", "input_fields": ["review"], "output_fields": ["label"],
            "labels": ["positive", "negative"], "train": synthetic_rows(24), "valid": synthetic_rows(24, 100),
            "test": synthetic_rows(20, 200)}  # fmt: skip
    by_seed = {s: dry_estimate(task, "dspy-miprov2", None, s)[0] for s in (0, 1, 2)}
    assert len(set(by_seed.values())) == 3, by_seed  # optuna draws other trials for each seed
