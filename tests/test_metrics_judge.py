"""LLM-judge metric for open-ended types, with FakeLM: scripted JSON, junk, failures, reference mixing."""

from __future__ import annotations

import pytest

from promptomatix.errors import BudgetExceeded, MetricError
from promptomatix.lm.fake import FakeLM
from promptomatix.metrics import MetricsManager
from promptomatix.metrics.judge import JUDGE_SCHEMA, parse_judge_answer

EX = {"topic": "autumn", "poem": "leaves fall slowly down"}


def mm(judge) -> MetricsManager:
    return MetricsManager(output_fields=["poem"], lambda_penalty=0, judge=judge)


def test_judge_only_without_reference():
    fake = FakeLM(responses=['{"score": 5, "reason": "vivid"}'])
    res = mm(fake).score("generation", {"topic": "autumn"}, {"poem": "red leaves drift"})
    assert res.score == 1.0
    assert res.feedback == "judge 5/5: vivid"
    call = fake.calls[0]
    assert call["json_schema"] == JUDGE_SCHEMA
    assert "autumn" in call["messages"][1]["content"] and "red leaves drift" in call["messages"][1]["content"]


def test_judge_mixed_with_reference_overlap():
    fake = FakeLM(responses=['{"score": 3, "reason": "ok"}'])
    res = mm(fake).score("conversation", EX, {"poem": "leaves fall slowly down"})
    # judge (3-1)/4 = 0.5, ROUGE-L 1.0 -> 0.5*0.5 + 0.5*1.0
    assert res.score == pytest.approx(0.75)
    assert res.details == {"judge": 0.5, "rouge_l": 1.0}


def test_judge_prose_wrapped_json():
    fake = FakeLM(responses=['Sure!\n```json\n{"score": 4, "reason": "good"}\n```'])
    assert mm(fake).score("planning", {"topic": "x"}, {"poem": "y"}).score == 0.75


@pytest.mark.parametrize("junk", ["I think it is good", '{"score": 9, "reason": "x"}', '{"reason": "no score"}'])
def test_junk_judge_answer_scores_zero(junk):
    res = mm(FakeLM(responses=[junk])).score("generation", {"topic": "x"}, {"poem": "y"})
    assert res.score == 0.0
    assert "judge answer unreadable" in res.feedback


def test_judge_call_failure_scores_zero_not_crash():
    res = mm(FakeLM()).score("generation", {"topic": "x"}, {"poem": "y"})  # FakeLM with no script raises
    assert res.score == 0.0 and "judge call failed" in res.feedback


def test_budget_exceeded_from_judge_propagates():
    def spent(messages):
        raise BudgetExceeded("budget spent", limit="calls")

    with pytest.raises(BudgetExceeded):
        mm(FakeLM(default=spent)).score("generation", {"topic": "x"}, {"poem": "y"})


def test_no_judge_falls_back_to_reference_overlap():
    res = mm(None).score("code_explanation", EX, {"poem": "leaves fall slowly down"})
    assert res.score == 1.0 and "no judge configured" in res.feedback
    with pytest.raises(MetricError, match="no judge"):
        mm(None).score("generation", {"topic": "x"}, {"poem": "y"})


def test_missing_output_scores_zero_without_calling_judge():
    fake = FakeLM(responses=['{"score": 5, "reason": "x"}'])
    res = mm(fake).score("generation", EX, {"other": "y"})
    assert res.score == 0.0 and res.feedback == "missing field poem"
    assert fake.calls == []


def test_parse_judge_answer_regex_fallback():
    assert parse_judge_answer("Score: 4 because fine") == (4, "")
    assert parse_judge_answer("I'd give it 2/5.") == (2, "")
    assert parse_judge_answer("nothing") is None
