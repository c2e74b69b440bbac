"""The meta backend spends what its plan says: a slot whose strategy gives nothing the round can score tries other
strategies, and every round promotes at least all but one of its candidates to the valid split. Before, a run's
calls depended on how many slots came back empty and how many candidates passed a 6-row screening: on the qwen
suite, meta's runs spent 0.5-1.25x the dry run's estimate (trec s0 left 7 of 12 slots empty)."""

from __future__ import annotations

import json
import random

import pytest

from promptomatix.backends.meta import MetaPromptOptimizer, MetaSettings
from promptomatix.backends.plan import plan_meta
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.backends.strategies import (
    ProposalContext,
    ProposalRejected,
    StrategyRegistry,
    TemplateStrategy,
    _builtin_template,
)
from promptomatix.errors import LMCallError
from promptomatix.lm.boundary import Budget
from promptomatix.lm.fake import FakeLM
from tests.backend_fakes import GuardedData
from tests.test_meta_backend import SPEC, make_ctx, rows, task_answer


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
        scored = [c for c in cands if c.minibatch_raw is not None or c.valid_raw is not None]
        promoted = [c for c in scored if c.valid_raw is not None]  # (a demo set covering the minibatch: unscreened)
        assert len(scored) == 4 and len(promoted) == 3, [(c.origin, c.note) for c in cands]
        filled = [c for c in promoted if "promoted to fill the round (3 a round)" in c.note]
        failed = {c.id for c in promoted if c.minibatch_raw is not None and c.minibatch_raw < 1.0}
        assert filled and failed == {c.id for c in filled}  # each one that failed its screening filled the round
        [left] = [c for c in scored if c.valid_raw is None]  # the one left out did no better on its minibatch
        assert left.minibatch_raw <= min(c.minibatch_raw for c in filled)


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


# --- review 28 of the change ------------------------------------------------------------------------------------


def test_a_rounds_teacher_calls_stay_within_one_a_slot_as_the_plan_counts():
    """Each refused teacher answer asked the teacher again: a plan that said "at most 106 calls" made 112, and under
    --max-calls 106 round 2 was refused with 44 calls unspent (review 28, #1)."""
    asked: list[str] = []

    def teacher(m):
        asked.append(m[-1]["content"][:6])
        if m[-1]["content"].startswith("FIRST"):  # the guards refuse it: no word of the task
            return json.dumps({"prompt": "Tell me a story about dragons and castles."})
        return json.dumps({"prompt": f"Variant {len(asked)}: say negative if the review complains, else positive."})

    reg = StrategyRegistry.default()
    reg.register(TemplateStrategy("first", 'FIRST $current_prompt $failures\nReply as JSON {"prompt": "..."}'))
    for i in range(2):
        reg.register(TemplateStrategy(f"second{i}", 'SECOND $current_prompt\nReply as JSON {"prompt": "..."}'))
    s = MetaSettings(strategies=["add_demos", "first", "second0", "add_demos", "first", "second1"], rounds=2,
                     candidates_per_round=3, minibatch_size=2, confirm_top_k=0, patience=9)  # fmt: skip
    plan = plan_meta(s, 12, 12, None)
    ctx, *_ = make_ctx(teacher, budget=Budget(max_calls=plan.max_calls))
    res = MetaPromptOptimizer(s, reg).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                              GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    assert res.rounds_completed == 2, res.stop_reason
    assert len(asked) == 2 * 3 and ctx.boundary.usage().total.calls <= plan.max_calls  # one more in each round
    assert any("in the slot of first" in c.note for c in res.candidates)  # a refused answer's slot was filled
    asked.clear()  # a round whose every slot asks the teacher has no teacher call to spare
    s = s.model_copy(update={"strategies": ["first", "second0", "first", "second1"], "candidates_per_round": 2})
    ctx, *_ = make_ctx(teacher)
    MetaPromptOptimizer(s, reg).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                        GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    assert len(asked) == 2 * 2


def test_a_teacher_strategy_that_reads_no_failures_is_not_asked_after_the_teacher_failed():
    asked: list[int] = []

    def down(m):
        asked.append(1)
        raise LMCallError("connection refused")

    reg = StrategyRegistry.default()
    reg.register(TemplateStrategy("compress_now", _builtin_template("compress"), needs_failures=False))
    s = MetaSettings(strategies=["rewrite_from_failures", "compress_now", "add_demos"], rounds=1, candidates_per_round=1,
                     confirm_top_k=0)  # fmt: skip
    ctx, *_ = make_ctx(down)
    res = MetaPromptOptimizer(s, reg).compile(ctx, PromptCandidate(instructions="Classify."),
                                              GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    assert len(asked) == 1 and res.candidates[1].origin == "add_demos"


def test_ctrl_c_while_a_round_fills_its_promotions_keeps_what_the_round_scored(monkeypatch):
    """The round's winner (valid 1.0 against 0.5) had been scored; a Ctrl-C while the screened-out candidates were
    scored on valid lost it and the round's checkpoint (review 28, #3)."""
    import itertools

    import promptomatix.backends.rounds as rounds

    n = itertools.count()

    def teacher(m):
        i = next(n)
        right = "Say negative if the review complains, else positive."
        return json.dumps({"prompt": right if i == 0 else f"Variant {i}: label the review."})

    def answer(m):  # the variants answer nonsense: they fail their screening
        return json.dumps({"label": "zzz"}) if "Variant" in m[0]["content"] else task_answer(m)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rounds, "_fill", interrupted)
    ctx, task, _ = make_ctx(teacher)
    task.default = answer
    saved: list[dict] = []
    ctx.checkpoint = saved.append
    s = MetaSettings(strategies=["rewrite_from_failures", "rephrase", "compress"], rounds=2, candidates_per_round=3,
                     confirm_top_k=0, patience=9)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        MetaPromptOptimizer(s).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                       GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    # kept and saved, the round not counted as done (a resume plays it again)
    assert [c["round"] for c in saved] == [0, 0] and saved[-1]["best"]["valid_raw"] == 1.0


def test_the_one_candidate_plan_scores_no_minibatch_nothing_reads():
    """Its candidate is scored on valid unscreened: the initial prompt's minibatch bought nothing (review 28, #9)."""
    s = MetaSettings.preset("quick")
    assert plan_meta(s, 24, 24, 60).valid_evidence
    ctx, task, _ = make_ctx("{}", budget=Budget(max_calls=60))
    MetaPromptOptimizer(s).compile(ctx, PromptCandidate(instructions=SPEC.initial_prompt),
                                   GuardedData(rows(24), rows(24, 100)))  # fmt: skip
    on_train = [c for c in task.calls if int(c["messages"][-1]["content"].rsplit(" ", 1)[-1]) < 100]
    assert on_train == []


def test_a_plan_without_a_promotion_floor_says_so_plainly():
    line = plan_meta(MetaSettings.preset("quick", candidates_per_round=1), 24, 24, None).describe()[0]
    assert "screened on 6 train rows, those that pass promoted to 24 valid rows" in line and "best 0" not in line
    assert "promoting only 0" not in line


def _fed(template: str) -> str:
    seen: list[str] = []
    TemplateStrategy("mine", template).propose(_ctx(["Mention sarcasm."], seen))
    return seen[0]


def test_the_feedback_goes_where_a_users_template_keeps_its_structure():
    """It went before the template's last line: inside a fenced prompt, between "The prompt to improve:" and the
    prompt, between "exactly like this:" and the JSON example (review 28, #2)."""
    fenced = _fed('Rewrite the prompt between the markers.\nAnswer as JSON {"prompt": "..."}.\n<prompt>\n'
                  "$current_prompt\n</prompt>")  # fmt: skip
    assert fenced.index("</prompt>") < fenced.index("Mention sarcasm.")
    labelled = _fed('Improve it. Reply as JSON {"prompt": "..."}.\nThe prompt to improve:\n$current_prompt')
    assert "The prompt to improve:\nSay negative" in labelled and labelled.rstrip().endswith("- Mention sarcasm.")
    example = _fed('Current: $current_prompt\nReply as JSON, exactly like this:\n{"prompt": "<the new prompt>"}')
    assert 'exactly like this:\n{"prompt"' in example and example.index("sarcasm") < example.index("Reply as JSON")
    assert "Mention sarcasm." in _fed('$$feedback is a word. Current: $current_prompt\nReply as JSON {"prompt": ""}')


def test_a_rewrite_that_copies_the_added_feedback_header_is_refused():
    def copier(messages):
        return json.dumps({"prompt": "Say negative if the review complains, else positive.\n\nReviewer feedback the "
                                     "new prompt must keep to:\n- Mention sarcasm."})  # fmt: skip

    c = _ctx(["Mention sarcasm."], [])
    c.teacher = FakeLM(default=copier)
    with pytest.raises(ProposalRejected, match="copies the meta-prompt"):
        TemplateStrategy("mine", 'Improve: <p>\n$current_prompt\n</p>\nReply as JSON {"prompt": "..."}').propose(c)


# --- review 30 -----------------------------------------------------------------------------------------------------


def _format_line_is_right(m):
    truth = "negative" if "awful" in m[-1]["content"] else "positive"
    return json.dumps({"label": truth if "Answer in JSON" in m[0]["content"] else "positive"})


def test_a_round_stopped_in_its_teacher_slot_keeps_the_slots_after_it():
    """A time budget ran out while slot 0 (the teacher's) was written: the round stopped recording at that slot, and
    the later slots' candidates, fully scored (format_line doubling the initial prompt's valid score), were lost
    (review 30, #1)."""
    import time

    def teacher(m):
        time.sleep(2.5)  # the budget's 2 s run out meanwhile
        return json.dumps({"prompt": "Tell me a story about dragons and castles."})

    ctx, task, _ = make_ctx(teacher, budget=Budget(max_seconds=2))
    task.default = _format_line_is_right
    s = MetaSettings(strategies=["rewrite_from_failures", "format_line", "add_demos", "rephrase"], rounds=2,
                     candidates_per_round=3, minibatch_size=4, confirm_top_k=0, patience=9)  # fmt: skip
    res = MetaPromptOptimizer(s).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                         GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    assert "budget" in res.stop_reason  # its refused answer's fallback (rephrase) was stopped by the budget
    assert [c.origin for c in res.candidates if c.round == 1] == ["format_line", "add_demos"]
    assert res.valid_raw == 1.0 and res.format_line


def test_ctrl_c_while_a_round_waits_for_its_teacher_keeps_what_it_scored():
    """Ctrl-C while the teacher wrote: the round's early candidates were scored (one at 1.0 against 0.5) but only the
    round-0 checkpoint was saved (review 30, #1)."""
    import threading
    import time

    scored = threading.Event()

    def teacher(m):
        scored.wait(10)  # the format line's candidate is scored on valid by now
        time.sleep(0.3)
        raise KeyboardInterrupt

    ctx, task, _ = make_ctx(teacher)
    saved: list[dict] = []
    ctx.checkpoint = saved.append
    formatted: list[int] = []

    def answer(m):
        if "Answer in JSON" in m[0]["content"]:
            formatted.append(1)
            if len(formatted) >= 4 + 12:  # its minibatch and its 12 valid rows
                scored.set()
        return _format_line_is_right(m)

    task.default = answer
    s = MetaSettings(strategies=["format_line", "rewrite_from_failures"], rounds=2, candidates_per_round=2,
                     minibatch_size=4, confirm_top_k=0, patience=9)  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        MetaPromptOptimizer(s).compile(ctx, PromptCandidate(instructions="Classify the review."),
                                       GuardedData(rows(12), rows(12, 40)))  # fmt: skip
    # kept and saved, the round not counted as done (a resume plays it again)
    assert [c["round"] for c in saved] == [0, 0] and saved[-1]["best"]["valid_raw"] == 1.0
