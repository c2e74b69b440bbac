"""The quality-vs-length front: dominated candidates are excluded, unscored ones are not compared."""

from __future__ import annotations

from promptomatix.metrics.pareto import ParetoPoint, best_for_lambda, candidate_points, pareto_front, penalized


def _p(i: int, q: float, w: int) -> ParetoPoint:
    return ParetoPoint(candidate_id=i, quality=q, words=w)


def test_dominated_candidates_are_excluded_and_the_front_is_sorted_best_first():
    pts = [_p(0, 0.6, 40), _p(1, 0.7, 50), _p(2, 0.6, 30), _p(3, 0.5, 60), _p(4, 0.7, 55), _p(5, 0.4, 10)]
    front = pareto_front(pts)
    assert [p.candidate_id for p in front] == [1, 2, 5]  # 0 loses to 2 (shorter), 3 to all, 4 to 1


def test_equal_points_appear_once():
    assert [p.candidate_id for p in pareto_front([_p(0, 0.5, 20), _p(1, 0.5, 20)])] == [0]


def test_only_candidates_scored_on_valid_are_compared():
    stored = [
        {"id": 0, "prompt": "Classify the review.", "valid_raw": 0.6, "origin": "initial"},
        {"id": 1, "prompt": "Short.", "minibatch_score": 0.9, "valid_raw": None, "origin": "compress"},
        {"id": 2, "prompt": "Classify the review as positive or negative.", "valid_raw": 0.8, "origin": "rewrite"},
    ]
    pts = candidate_points(stored)
    assert [p.candidate_id for p in pts] == [0, 2]
    assert pts[0].words == 3
    assert [p.candidate_id for p in pareto_front(pts)] == [2, 0]


def test_a_candidate_that_reads_more_tokens_at_equal_words_and_quality_is_dominated():
    pts = [ParetoPoint(candidate_id=0, quality=0.8, words=20, tokens=40),
           ParetoPoint(candidate_id=1, quality=0.8, words=20, tokens=55)]  # fmt: skip
    assert [p.candidate_id for p in pareto_front(pts)] == [0]


def test_reselecting_with_another_lambda_trades_quality_for_length():
    pts = [ParetoPoint(candidate_id=0, quality=0.80, words=100, length=90),
           ParetoPoint(candidate_id=1, quality=0.75, words=30, length=20)]  # fmt: skip
    assert best_for_lambda(pts, 0.0).candidate_id == 0  # quality alone
    assert best_for_lambda(pts, 0.005).candidate_id == 1  # 0.80·e^-0.45 = 0.51 < 0.75·e^-0.1 = 0.68
    assert penalized(pts[0], 0.0) == 0.80
    assert best_for_lambda([], 0.01) is None
