"""PooledEvaluate (MIPROv2's trials on one pool kept for the run) returns what stock dspy.Evaluate returns, and with
`replay` does not run a row again under instructions and demos it has already scored."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import dspy
import pytest

from promptomatix.backends.dspy_evaluate import CANCELLED, PooledEvaluate


class Labeler(dspy.Module):
    """Answers from the input alone (no LM); fails on reviews containing 'boom'; counts the rows it runs and
    records the LM it sees in DSPy's settings."""

    def __init__(self) -> None:
        super().__init__()
        self.p = dspy.Predict("review -> label")  # what MIPROv2 changes between trials
        self.runs: list[str] = []
        self.seen_lm: list[object] = []
        self._lock = threading.Lock()

    def forward(self, review: str) -> dspy.Prediction:
        with self._lock:
            self.runs.append(review)
            self.seen_lm.append(dspy.settings.lm)
        if "boom" in review:
            raise RuntimeError("row failed")
        return dspy.Prediction(label="negative" if "awful" in review else "positive")


def rows(*reviews: str) -> list[dspy.Example]:
    return [
        dspy.Example(review=r, label="negative" if "awful" in r else "positive").with_inputs("review") for r in reviews
    ]


def metric(example, prediction, trace=None) -> float:
    return float(prediction.label == example.label)


def outcome(result) -> tuple[float, list]:
    return result.score, [(ex.review, dict(pred.items()), score) for ex, pred, score in result.results]


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=4) as p:
        yield p


def test_it_returns_what_stock_evaluate_returns_failed_rows_included(pool):
    devset = rows("great film", "awful film", "boom", "awful plot", "fine", "boom again", "great cast")
    stock = dspy.Evaluate(devset=devset, metric=metric, num_threads=4, max_errors=10, display_progress=False)
    ours = PooledEvaluate.like(stock, pool)
    want, got = outcome(stock(Labeler())), outcome(ours(Labeler()))
    assert got == want
    assert got[0] == round(100 * 5 / 7, 2) and got[1][2] == ("boom", {}, 0.0)  # a failed row scores failure_score


def test_it_stops_as_stock_does_once_max_errors_rows_failed(pool):
    devset = rows("boom 1", "boom 2", "great", "boom 3")
    stock = dspy.Evaluate(devset=devset, metric=metric, num_threads=1, max_errors=2, display_progress=False)
    with pytest.raises(Exception, match=CANCELLED):
        stock(Labeler())
    with pytest.raises(Exception, match=CANCELLED):
        PooledEvaluate.like(stock, pool)(Labeler())


def test_every_row_runs_under_the_callers_dspy_settings(pool):
    devset = rows("great", "awful", "fine", "awful again", "great again")
    program, sentinel = Labeler(), dspy.LM("openai/sentinel")
    with dspy.context(lm=sentinel):
        PooledEvaluate(pool=pool, devset=devset, metric=metric)(program)
    assert program.seen_lm == [sentinel] * len(devset)


def test_with_replay_a_row_already_scored_under_the_same_instructions_and_demos_is_not_run_again(pool):
    devset = rows("great", "awful", "boom", "fine")
    program = Labeler()
    evaluate = PooledEvaluate(pool=pool, devset=devset, metric=metric, max_errors=10, replay=True)
    first = outcome(evaluate(program))
    assert sorted(program.runs) == sorted(r.review for r in devset)
    program.runs.clear()
    assert outcome(evaluate(program)) == first
    assert program.runs == ["boom"]  # only the failed row is run again
    program.runs.clear()
    program.p.signature = program.p.signature.with_instructions("Another instruction.")  # another trial
    evaluate(program)
    assert sorted(program.runs) == sorted(r.review for r in devset)
    program.runs.clear()
    program.p.demos = [dspy.Example(review="x", label="positive")]  # same instructions, other demos
    evaluate(program, devset=devset[:2])
    assert sorted(program.runs) == ["awful", "great"]


def test_without_replay_every_row_runs_every_time(pool):
    devset = rows("great", "awful")
    program = Labeler()
    evaluate = PooledEvaluate(pool=pool, devset=devset, metric=metric)
    evaluate(program)
    evaluate(program)
    assert len(program.runs) == 4


def test_rows_are_replayed_only_when_no_run_setting_makes_the_task_model_or_judge_sample():
    from promptomatix.lm.boundary import LMBoundary, RoleSettings
    from promptomatix.lm.fake import FakeLM

    def boundary(**settings: RoleSettings) -> LMBoundary:
        return LMBoundary({"task": FakeLM(default="x")}, role_settings=settings)

    assert boundary().greedy("task", "judge")
    assert boundary(task=RoleSettings(temperature=0.0)).greedy("task", "judge")
    assert not boundary(task=RoleSettings(temperature=0.7)).greedy("task", "judge")
    assert not boundary(judge=RoleSettings(temperature=0.3)).greedy("task", "judge")
