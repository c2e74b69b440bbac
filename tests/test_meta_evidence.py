"""The meta backend keeps a finalist only with paired evidence: it must win more rows than luck would give it
(one-sided sign test, p <= 0.1) or lose none. On squad a finalist chosen on a mean over 24 rows (4 rows better,
1 worse) was significantly worse on 100 fresh rows (benchmarks/RESULTS.md §7)."""

from __future__ import annotations

import json

import pytest

from promptomatix.backends.base import RunContext
from promptomatix.backends.meta import MetaPromptOptimizer
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.selection import EVIDENCE_P, Evidence, evidence
from promptomatix.lm.boundary import LMBoundary
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import MetricsManager
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import SPEC, only_rewrites, rows


def test_the_sign_test_is_exact():
    assert Evidence(4, 1).p_value == pytest.approx(6 / 32)
    assert Evidence(4, 0).p_value == pytest.approx(1 / 16)
    assert Evidence(0, 0).p_value == 1.0
    assert not Evidence(4, 1).enough and Evidence(6, 1).enough  # 8/128 = 0.0625 <= 0.1
    assert Evidence(1, 0).enough and Evidence(0, 0).enough  # no row worse: at least as good on every row
    got = evidence([(1.0, 0.0), (0.5, 0.5), (0.2, 0.6), (1.0, None)])  # ties and unpaired out
    assert (got.wins, got.losses) == (1, 1) and got.diffs == pytest.approx((1.0, -0.4))
    assert str(Evidence(1, 0)) == "1 row better, 0 worse (sign test p = 0.5)"  # what the session's note says
    assert evidence([(1.0, 0.0)] * 6 + [(0.0, 1.0)]).p_value == pytest.approx(8 / 128)  # 0/1 rows: the sign test


def test_graded_rows_are_weighed_not_counted():
    """Six rows won by 0.05 F1 and one lost by 0.9 is a loss on the mean; the sign test saw "6 to 1" (p = 0.06) and
    kept the finalist. Four rows won by 0.9 and two lost by 0.01 is a gain the sign test missed (p = 0.34)."""
    small_wins = evidence([(0.55, 0.5)] * 6 + [(0.1, 1.0)])
    assert (small_wins.wins, small_wins.losses) == (6, 1) and not small_wins.enough
    assert small_wins.p_value > 0.5 and "permutation test" in str(small_wins)
    big_wins = evidence([(0.95, 0.05)] * 4 + [(0.49, 0.5), (0.48, 0.5)])
    assert big_wins.p_value == pytest.approx(4 / 64) and big_wins.enough  # exact: 4 of the 64 sign flips


def task_for(extra_right: set[int], extra_wrong: set[int]):
    """The initial prompt is right on every row except multiples of 5; a prompt saying 'candidate' is also right
    on `extra_right` (rows the initial gets wrong) and wrong on `extra_wrong`."""

    def answer(messages):
        system, user = messages[0]["content"], messages[-1]["content"]
        number = int(user.rsplit(" ", 1)[-1])
        truth = "negative" if "awful" in user else "positive"
        wrong = "positive" if truth == "negative" else "negative"
        right = number % 5 != 0
        if "candidate" in system:
            right = (right or number in extra_right) and number not in extra_wrong
        return json.dumps({"label": truth if right else wrong})

    return answer


def run(
    extra_right: set[int],
    extra_wrong: set[int],
    initial: str = "Classify the review.",
    rewrite: str = "Classify the review (candidate wording).",
    lam: float = 0.0,
):
    return compile_with(extra_right, extra_wrong, initial, rewrite, lam)[0]


def compile_with(
    extra_right: set[int], extra_wrong: set[int], initial: str, rewrite: str, lam: float, max_calls: int | None = None
):
    from promptomatix.lm.boundary import Budget

    task = FakeLM(default=task_for(extra_right, extra_wrong), model="fake/task")
    teacher = FakeLM(default=json.dumps({"prompt": rewrite}), model="fake/teacher")
    mm = MetricsManager(output_fields=["label"], lambda_penalty=lam, label_set=["positive", "negative"])
    boundary = LMBoundary({"task": task, "teacher": teacher}, budget=Budget(max_calls=max_calls))
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=4)
    settings = only_rewrites(rounds=1, candidates_per_round=1, minibatch_size=1)
    result = MetaPromptOptimizer(settings).compile(
        ctx, PromptCandidate(instructions=initial), GuardedData(rows(12), rows(12, 100))
    )
    return result, boundary


def test_a_finalist_ahead_by_a_few_rows_but_worse_on_one_is_not_kept():
    # valid rows 100..111 and train rows 0..11: better on 100, 105, 0, 5 (4 rows), worse on 101 (1 row)
    res = run(extra_right={100, 105, 0, 5}, extra_wrong={101})
    cand = next(c for c in res.candidates if "candidate" in c.instructions)
    assert cand.valid_raw > res.initial_valid_raw  # ahead on the mean: the old rule kept it
    assert "4 rows better, 1 worse" in cand.note and "not kept" in cand.note
    assert res.instructions == "Classify the review."
    assert f"p <= {EVIDENCE_P}" in cand.note


def test_a_finalist_with_enough_rows_won_is_kept_even_if_it_loses_one():
    res = run(extra_right={100, 105, 110, 0, 5, 10}, extra_wrong={101})  # 6 better, 1 worse: p = 0.0625
    assert res.instructions == "Classify the review (candidate wording)."
    assert "on 24 valid and train rows: candidate 1 beat the initial prompt by 0.208 raw (0.208 with the length" in res.stop_reason


def test_a_shorter_finalist_at_equal_quality_is_not_said_to_beat_the_initial_prompt():
    initial = "Classify the review, reading every single word of it with great care before you answer."
    res = run(set(), set(), initial=initial, rewrite="Classify the candidate review.", lam=0.01)
    assert res.instructions == "Classify the candidate review."  # kept: no row worse, and shorter
    assert "kept for its length at equal raw quality" in res.stop_reason
    assert "beat" not in res.stop_reason


def test_a_finalist_better_on_a_row_and_worse_on_none_is_kept():
    res = run(extra_right={100}, extra_wrong=set())
    assert res.instructions == "Classify the review (candidate wording)."


def run_on_a_budget(extra_right: set[int], extra_wrong: set[int], max_calls: int):
    """As `run`, under a call budget: 30 pays for the baseline and one screened candidate on the 12 valid rows
    (27), not for its confirmation as well (43)."""
    return compile_with(
        extra_right, extra_wrong, "Classify the review.", "Classify the review (candidate wording).", 0.0, max_calls
    )


def test_one_candidate_without_a_confirmation_is_judged_on_the_valid_rows():
    """A budget for one candidate but not its confirmation was "no search fits the budget" (refused): at a third of
    the DSPy peer's calls, on seed 1 of spam, intent and trec. One candidate is not the best of many, so its paired
    comparison on the valid rows is a fair test."""
    kept, boundary = run_on_a_budget(extra_right={100, 105, 110}, extra_wrong=set(), max_calls=30)
    assert kept.instructions == "Classify the review (candidate wording)."
    assert "valid rows as its test: 3 rows better, 0 worse" in kept.stop_reason and "kept" in kept.stop_reason
    assert boundary.usage().total.calls <= 30
    lost, _ = run_on_a_budget(extra_right={100, 105}, extra_wrong={101}, max_calls=30)  # ahead on the mean
    assert lost.valid_raw == lost.initial_valid_raw and lost.instructions == "Classify the review."
    cand = next(c for c in lost.candidates if "candidate" in c.instructions)
    assert "2 rows better, 1 worse" in cand.note and cand.note.endswith("not kept")
