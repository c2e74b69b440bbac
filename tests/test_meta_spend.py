"""The meta backend spends what its plan says: a slot whose strategy gives nothing the round can score tries other
strategies, and every round promotes at least all but one of its candidates to the valid split. Before, a run's
calls depended on how many slots came back empty and how many candidates passed a 6-row screening: on the qwen
suite, meta's runs spent 0.5-1.25x the dry run's estimate (trec s0 left 7 of 12 slots empty)."""

from __future__ import annotations

import json
import random

from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.plan import plan_meta
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import ProposalContext, TemplateStrategy, _builtin_template
from promptomatix.errors import LMCallError
from promptomatix.lm.fake import FakeLM
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import SPEC, make_ctx, rows


def compile_with(settings: MetaSettings, ctx, instructions: str = "Classify."):
    return MetaPromptOptimizer(settings).compile(ctx, PromptCandidate(instructions=instructions),
                                                 GuardedData(rows(12), rows(12, 40)))  # fmt: skip


def test_an_empty_slot_is_filled_by_another_strategy_that_says_whose_slot_it_took():
    # "Classify." has no line to drop: the slot used to stay empty ("nothing new to propose") and the round scored
    # nothing; now a demo set takes its place
    ctx, *_ = make_ctx("{}")
    s = MetaSettings(strategies=["drop_line", "add_demos"], rounds=1, candidates_per_round=1, confirm_top_k=0)
    res = compile_with(s, ctx)
    [cand] = res.candidates[1:]
    assert cand.origin == "add_demos" and cand.n_demos > 0
    assert cand.note.startswith("in the slot of drop_line, which gave nothing to score (nothing new to propose)")


def test_two_slots_that_give_the_same_candidate_do_not_leave_a_duplicate():
    ctx, *_ = make_ctx("{}")
    s = MetaSettings(strategies=["format_line", "format_line", "add_demos"], rounds=1, candidates_per_round=2,
                     confirm_top_k=0)  # fmt: skip
    res = compile_with(s, ctx)
    assert [c.origin for c in res.candidates[1:]] == ["format_line", "add_demos"]
    assert not any(c.note.startswith("duplicate") for c in res.candidates)
    assert res.candidates[2].note.startswith("in the slot of format_line, which gave nothing to score (duplicate")


def test_a_dead_teacher_is_not_asked_again_for_the_slot():
    """A failed teacher call falls back to procedural strategies only: a teacher that is down is not asked twice."""
    ctx, _, teacher = make_ctx("{}")
    asked: list[int] = []

    def down(messages):
        asked.append(1)
        raise LMCallError("teacher call failed: connection refused")

    teacher.default = down
    s = MetaSettings(strategies=["rewrite_from_failures", "rephrase", "add_demos"], rounds=1, candidates_per_round=1,
                     confirm_top_k=0)  # fmt: skip
    res = compile_with(s, ctx)
    assert res.candidates[1].origin == "add_demos", [c.note for c in res.candidates]
    assert "in the slot of rewrite_from_failures" in res.candidates[1].note
    assert "rephrase" not in str([c.note for c in res.candidates])
    assert len(asked) == 1, asked


def _only_the_initial_is_right(messages):
    system, user = messages[0]["content"], messages[-1]["content"]
    right = system.startswith("Say negative if the review complains") and len(messages) == 2
    return json.dumps({"label": ("negative" if "awful" in user else "positive") if right else "zzz"})


def test_every_round_promotes_all_but_one_of_its_candidates_even_if_they_fail_their_screening():
    ctx, task, _ = make_ctx(lambda m: json.dumps({"prompt": f"Variant {random.random():.6f}: label the review."}))
    task.default = _only_the_initial_is_right
    s = MetaSettings.preset("quick", patience=9)
    res = compile_with(s, ctx, "Say negative if the review complains, else positive.")
    for rnd in (1, 2, 3):
        cands = [c for c in res.candidates if c.round == rnd]
        screened = [c for c in cands if c.minibatch_raw is not None]
        promoted = [c for c in screened if c.valid_raw is not None]
        assert len(screened) == 4 and len(promoted) == 3, [(c.origin, c.note) for c in cands]
        filled = [c for c in promoted if "promoted to fill the round (3 a round)" in c.note]
        assert {c.id for c in promoted if c.minibatch_raw < 1.0} == {c.id for c in filled}
        assert len(filled) >= 2 if rnd == 1 else len(filled) == 3  # round 1's format line passes on its own
        [left] = [c for c in screened if c.valid_raw is None]  # the one left out did no better on its minibatch
        assert left.minibatch_raw <= min(c.minibatch_raw for c in promoted) and left.id > min(c.id for c in filled)


def test_a_seed_gives_the_same_run_with_slots_filled():
    def once():
        ctx, *_ = make_ctx(lambda m: json.dumps({"prompt": "Say negative if the review complains, else positive."}))
        res = compile_with(MetaSettings.preset("quick"), ctx)
        return [(c.origin, c.note, c.n_demos, c.valid_raw) for c in res.candidates]

    assert once() == once()


def test_the_plan_says_how_many_a_round_promotes():
    line = plan_meta(MetaSettings.preset("quick"), 24, 24, None).describe()[0]
    assert "screened on 6 train rows, those that pass and at least the best 3 of each round promoted to 24 valid" in line
    one = plan_meta(MetaSettings.preset("quick"), 24, 24, 55)  # one candidate, judged on the valid rows
    assert one.valid_evidence and one.promote_at_least == 1 and "each candidate scored on 24 valid rows" in (
        one.describe()[0]
    )


def _ctx(feedback: list[str], seen: list[str]) -> ProposalContext:
    def teacher(messages):
        seen.append(messages[-1]["content"])
        return json.dumps({"prompt": "Say negative if the review complains or is sarcastic, else positive."})

    best = PromptCandidate(instructions="Say negative if the review complains, else positive.")
    return ProposalContext(spec=SPEC, best=best, best_score=0.5, history=[], failures=[], feedback=feedback,
                           train=rows(6), rng=random.Random(0), teacher=FakeLM(default=teacher))  # fmt: skip


def test_every_teacher_template_shows_the_reviewers_feedback_when_there_is_some():
    """compress and add_format did not show it: in a refine run their shorter rewrite, which dropped what the
    reviewer asked for, won at equal quality and the feedback was left unaddressed."""
    for name in ("compress", "add_format", "rephrase", "rewrite_from_failures"):
        seen: list[str] = []
        TemplateStrategy(name, _builtin_template(name)).propose(_ctx(["Include sarcasm."], seen))
        assert seen[0].count("Include sarcasm.") == 1, (name, seen[0])
        assert seen[0].rstrip().endswith("}"), name  # the reply instruction stays last
        seen.clear()
        TemplateStrategy(name, _builtin_template(name)).propose(_ctx([], seen))
        assert ("Reviewer feedback" in seen[0]) == (name in ("rephrase", "rewrite_from_failures")), name
