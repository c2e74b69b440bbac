"""MIPROv2's instruction proposals are made distinct before its trials choose among them: a small teacher that
repeats an instruction left trials that were the same program (our MIPROv2 on spam s0 spent 215 calls where the dry
run said 275: two of its three instructions were the initial one word for word)."""

from __future__ import annotations

import json

from dspy.propose import grounded_proposer as gp

from promptomatix.backends import dspy_parallel
from promptomatix.backends.base import RunContext
from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings
from promptomatix.backends.dspy_proposals import other_tip, repeats
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.errors import LMCallError
from promptomatix.lm.boundary import LMBoundary
from promptomatix.metrics import MetricsManager
from tests.backend_fakes import InFlight
from tests.test_dspy_backend import SPEC, data, requested_fields, right_with_instruction_or_demos, task_model

SPAM = ("Classify an SMS message as spam or ham (a normal personal message).\nGiven: text. Produce: label.\n"
        "Answer with exactly one of: spam, ham.\nOutput format: spam_or_ham")  # fmt: skip


def test_repeats_are_the_proposals_equal_to_the_instruction_or_an_earlier_one_but_not_the_first():
    """The spam s0 proposals, as the qwen teacher made them: index 0 is replaced by the initial instruction anyway."""
    other = SPAM.replace("Classify an SMS", "Classify the SMS")
    assert repeats([SPAM, " " + SPAM.replace("\n", "\n "), other], SPAM) == [1]
    assert repeats(["x", "y", "y", "Y", SPAM], SPAM) == [2, 4]  # case is a different prompt


def test_a_proposal_asked_for_again_gets_the_next_tip():
    tips = {"none": "", "creative": "Be creative.", "simple": "Keep it simple."}
    assert [other_tip(t, tips) for t in (None, "", "Be creative.", "Keep it simple.")] == [
        "creative", "creative", "simple", "none"]  # fmt: skip


def _compile(teacher, monkeypatch) -> tuple[list[str], str]:
    seen: list[list[str]] = []
    inner = dspy_parallel.ParallelMIPROv2._optimize_prompt_parameters

    def spy(self, program, instruction_candidates, *args):
        seen.append(list(instruction_candidates[0]))
        return inner(self, program, instruction_candidates, *args)

    monkeypatch.setattr(dspy_parallel.ParallelMIPROv2, "_optimize_prompt_parameters", spy)
    task = InFlight(default=task_model(right_with_instruction_or_demos), latency=0.0, model="fake/task")
    boundary = LMBoundary({"task": task, "teacher": InFlight(default=teacher, latency=0.0, model="fake/teacher")})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=2, seed=3)
    initial = PromptCandidate(instructions="Classify the review.")
    res = DSPyOptimizer(DSPySettings(optimizer="miprov2", num_candidates=6, num_trials=4)).compile(ctx, initial, data())
    [choices] = seen
    return choices, res.stop_reason


def test_a_teacher_that_repeats_itself_leaves_the_trials_fewer_instructions_and_the_run_says_so(monkeypatch):
    def echo(messages):  # every proposal the same instruction, whatever the tip
        return json.dumps({name: "Say whether the review is positive." for name in requested_fields(messages)})

    choices, why = _compile(echo, monkeypatch)
    assert choices == ["Classify the review.", "Say whether the review is positive."]
    assert "4 of the teacher's instruction proposals repeated an instruction and were asked for again: 0 new, 4 " \
           "dropped (repeated again, or the teacher failed)" in why


def test_a_repeat_asked_for_again_with_another_tip_becomes_a_new_instruction(monkeypatch):
    def by_tip(messages):  # the instruction depends only on the tip the proposal was given
        text = " ".join(m["content"] for m in messages)
        tip = next((k for k, v in gp.TIPS.items() if v and v in text), "none")
        return json.dumps({name: f"Say whether the review is positive ({tip})." for name in requested_fields(messages)})

    choices, why = _compile(by_tip, monkeypatch)
    assert len(choices) == len(set(choices)) and len(choices) > 2, choices
    assert "asked for again" in why and " 0 new" not in why


def test_a_teacher_that_fails_when_asked_again_does_not_fail_the_run(monkeypatch):
    """The run had its proposals; stock MIPROv2 never makes the second call, so its failure drops the repeat only."""
    asked: list[int] = []

    def echo_then_down(messages):
        fields = requested_fields(messages)
        if "proposed_instruction" in fields:
            asked.append(1)
            if len(asked) > 6:  # the six first proposals answered; every one asked again fails
                raise LMCallError("teacher call failed: connection refused")
        return json.dumps({name: "Say whether the review is positive." for name in fields})

    choices, why = _compile(echo_then_down, monkeypatch)
    assert choices == ["Classify the review.", "Say whether the review is positive."] and len(asked) == 10
    assert "were asked for again: 0 new, 4 dropped" in why
