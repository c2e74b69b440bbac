"""MIPROv2's instruction proposals are made distinct before its trials choose among them: a small teacher that
repeats an instruction left trials that were the same program (our MIPROv2 on spam s0 spent 215 calls where the dry
run said 275: two of its three instructions were the initial one word for word)."""

from __future__ import annotations

import json

from promptomatix.backends import dspy_parallel
from promptomatix.backends.base import RunContext
from promptomatix.backends.dspy_backend import DSPyOptimizer, DSPySettings
from promptomatix.backends.dspy_proposals import distinct_instructions
from promptomatix.backends.prompt import PromptCandidate
from promptomatix.lm.boundary import LMBoundary
from promptomatix.metrics import MetricsManager
from tests.backend_fakes import InFlight
from tests.test_dspy_backend import SPEC, data, requested_fields, right_with_instruction_or_demos, task_model

SPAM = ("Classify an SMS message as spam or ham (a normal personal message).\nGiven: text. Produce: label.\n"
        "Answer with exactly one of: spam, ham.\nOutput format: spam_or_ham")  # fmt: skip


def test_a_repeat_becomes_the_initial_instruction_without_its_last_line():
    """The spam s0 proposals, as the qwen teacher made them."""
    other = SPAM.replace("Classify an SMS", "Classify the SMS")
    out, repeats = distinct_instructions([SPAM, " " + SPAM.replace("\n", "\n "), other])
    assert repeats == 1 and out == [SPAM, SPAM.rsplit("\n", 1)[0], other]


def test_a_one_line_instruction_loses_a_sentence_and_a_repeat_with_no_variant_left_is_dropped():
    out, repeats = distinct_instructions(["Classify it. Be brief.", "x", "x", "X", "Be brief."])
    # "Be brief." (the variant without the first sentence) was proposed already: the second repeat has none left
    assert out == ["Classify it. Be brief.", "x", "Classify it.", "Be brief."] and repeats == 2


def test_miprov2_trials_choose_among_distinct_instructions_and_the_run_says_why(monkeypatch):
    seen: list[list[str]] = []
    inner = dspy_parallel.ParallelMIPROv2._optimize_prompt_parameters

    def spy(self, program, instruction_candidates, *args):
        seen.append(list(instruction_candidates[0]))
        return inner(self, program, instruction_candidates, *args)

    monkeypatch.setattr(dspy_parallel.ParallelMIPROv2, "_optimize_prompt_parameters", spy)

    def echo(messages):  # every proposal the same instruction
        return json.dumps({name: "Say whether the review is positive." for name in requested_fields(messages)})

    task = InFlight(default=task_model(right_with_instruction_or_demos), latency=0.0, model="fake/task")
    boundary = LMBoundary({"task": task, "teacher": InFlight(default=echo, latency=0.0, model="fake/teacher")})
    mm = MetricsManager(output_fields=["label"], lambda_penalty=0.0, label_set=["positive", "negative"])
    ctx = RunContext(boundary=boundary, metrics=mm, spec=SPEC, num_threads=2, seed=3)
    initial = PromptCandidate(instructions="Classify the review.\nAnswer positive or negative.\nBe brief.")
    res = DSPyOptimizer(DSPySettings(optimizer="miprov2", num_candidates=6, num_trials=4)).compile(ctx, initial, data())
    [choices] = seen
    assert len(choices) == len(set(choices)) == 5, choices  # initial, the proposal, 3 variants; 1 repeat dropped
    assert "Classify the review.\nAnswer positive or negative." in choices
    assert "4 of the teacher's instruction proposals repeated an earlier one" in res.stop_reason
