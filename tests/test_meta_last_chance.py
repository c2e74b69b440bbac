"""A budget-fitted meta run holds calls back for the confirmation of its finalists. When the budget stops the rounds
and no candidate reached the initial prompt's valid score there is nothing to confirm: the rounds go on with one
candidate each on those calls instead of leaving them unspent (meta at a third of the peer's calls on squad s0
stopped with 20 of 51 calls left, its estimate 1.29x what it spent). A finalist of those rounds is confirmed if the
calls left still pay for it, else judged on the valid rows."""

from __future__ import annotations

import json

from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.plan import plan_meta
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.lm.boundary import Budget
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import make_ctx, rows

GOOD = "Say negative if the review complains, else positive."


def _settings(**kw) -> MetaSettings:
    return MetaSettings(**{"strategies": ["rewrite_from_failures"], "rounds": 3, "candidates_per_round": 2,
                           "minibatch_size": 4, "confirm_top_k": 2, "top_k": 3, "patience": 9, **kw})  # fmt: skip


def _teacher(good_from: int, tie: bool | int = False):
    """Rewrites that lose on every row ("Variant N"), or that tie from teacher call `tie` on, until teacher call
    `good_from`."""
    asked: list[int] = []

    def answer(messages):
        asked.append(1)
        tied = tie is True or (tie is not False and len(asked) >= tie)
        bad = f"Note {len(asked)}: the film review, in more words." if tied else f"Variant {len(asked)}: label it."
        return json.dumps({"prompt": GOOD if len(asked) >= good_from else bad})

    return answer


def _task(right: set[int] | None = None):
    """A "Variant" prompt answers nonsense; the good one is right on the rows `right` (all when None); the rest
    answer "positive" (half the rows)."""

    def answer(messages):
        system, user = messages[0]["content"], messages[-1]["content"]
        number = int(user.rsplit(" ", 1)[-1])
        if system.startswith("Variant"):
            return json.dumps({"label": "zzz"})
        good = "complains" in system and (right is None or number in right)
        return json.dumps({"label": "negative" if good and "awful" in user else "positive"})

    return answer


def _run(budget: int, good_from: int, right: set[int] | None = None, tie: bool | int = False, n_valid: int = 12,
         **kw):  # fmt: skip
    ctx, task_lm, _ = make_ctx(_teacher(good_from, tie), budget=Budget(max_calls=budget))
    task_lm.default = _task(right)
    res = MetaPromptOptimizer(_settings(**kw)).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                                       GuardedData(rows(12), rows(n_valid, 40)))  # fmt: skip
    return res, ctx.boundary.usage().total.calls


def test_the_dry_run_says_when_rounds_go_on_with_one_candidate():
    plan = plan_meta(_settings(), 12, 12, 70)
    assert plan.confirm_calls == 16 and plan.rounds == 1 and plan.extends
    assert "they go on with one candidate each on the calls held back for it" in plan.describe()[0]
    # a preset the budget does not cut never gets there, and its line does not say it
    assert "one candidate each" not in plan_meta(MetaSettings.preset("quick"), 20, 20, 100000).describe()[0]


def test_with_nothing_to_confirm_the_rounds_go_on_with_one_candidate_until_the_budget_is_spent():
    res, calls = _run(70, good_from=99)
    assert res.rounds_completed == 3 and [c.round for c in res.candidates].count(3) == 1, res.stop_reason
    assert res.stop_reason.startswith("from round 2 on, one candidate a round: the calls left pay for no round of 2 "
                                      "candidates and the confirmation, and no candidate needed it")  # fmt: skip
    assert res.instructions == "Classify the review." and 70 - calls < 16 and calls >= 60  # it used to stop at 35


def test_a_finalist_of_those_rounds_is_confirmed_when_the_calls_left_pay_for_it():
    res, calls = _run(70, good_from=3)
    assert res.rounds_completed == 2 and "complains" in res.instructions, res.stop_reason
    assert "confirmation on" in res.stop_reason and calls <= 70


def test_else_it_is_judged_on_the_valid_rows_and_needs_more_evidence_there_when_they_judged_others():
    res, calls = _run(64, good_from=3)
    assert "confirmation on" not in res.stop_reason and calls <= 64, res.stop_reason
    assert res.stop_reason.endswith("the best of 2 candidates scored there, valid rows as its test: 6 rows better, 0 "
                                    "worse (sign test p = 0.016), kept")  # fmt: skip
    # 3 rows better and none worse keeps one candidate alone ("no row worse"); the second scored there needs p <= 0.05
    res, _ = _run(64, good_from=3, right={41, 45, 49})
    assert res.stop_reason.endswith("3 rows better, 0 worse (sign test p = 0.12), not kept (needs p <= 0.05)")
    assert res.instructions == "Classify the review."


def test_a_candidate_that_ties_the_initial_prompt_keeps_the_reserve_for_its_confirmation():
    res, calls = _run(70, good_from=99, tie=True)
    assert "one candidate a round" not in res.stop_reason and res.rounds_completed == 1
    assert "confirmation" in res.stop_reason and calls <= 70


def test_patience_in_those_rounds_keeps_what_the_budget_did_in_the_stop_reason():
    res, _ = _run(70, good_from=99, patience=2)
    assert res.stop_reason.startswith("from round 2 on, one candidate a round")
    assert "; no improvement for 2 rounds; " in res.stop_reason


def test_the_confirmation_after_those_rounds_is_sized_to_the_one_finalist_there_is():
    """With 2 finalists planned (24 calls) and 18 left, the one finalist's confirmation (16) still fits: it used to
    be judged on the valid rows alone and lost (3 rows better, p = 0.12), where the confirmation keeps it."""
    res, calls = _run(88, good_from=4, right={41, 45, 49, 1, 3, 5, 7, 9, 11})
    assert "confirmation on 20 valid and train rows: candidate 4 beat the initial prompt" in res.stop_reason
    assert "complains" in res.instructions and calls <= 88


def test_a_tie_the_confirmation_can_no_longer_test_does_not_stop_those_rounds():
    res, calls = _run(43, good_from=99, tie=3, n_valid=6)
    assert res.rounds_completed == 4 and res.stop_reason.startswith("from round 3 on"), res.stop_reason
    assert [c.valid_raw for c in res.candidates if c.round >= 3] == [0.5, 0.5] and calls <= 43  # two untestable ties


def test_those_rounds_go_on_through_the_strategies_one_a_round():
    """Taking each round's first slot skipped every strategy but one in k."""
    res, _ = _run(70, good_from=99, strategies=["rewrite_from_failures", "rewrite_from_failures", "rephrase",
                                                "add_demos"])  # fmt: skip
    assert [c.origin for c in res.candidates if c.round >= 2] == ["rephrase", "add_demos"], res.stop_reason
