"""The paired held-out verdict: exact tests on the same rows, honest about size, length and errors."""

from __future__ import annotations

import pytest

from promptomatix.metrics.verdict import paired_verdict


def test_clear_gain_on_binary_scores_is_improved_by_exact_mcnemar():
    initial = [0.0] * 20 + [1.0] * 10
    optimized = [1.0] * 14 + [0.0] * 6 + [1.0] * 10  # 14 wins, 0 losses
    v = paired_verdict(initial, optimized)
    assert v.outcome == "improved"
    assert (v.wins, v.losses, v.ties) == (14, 0, 16)
    assert v.test == "exact McNemar"
    assert v.p_value == pytest.approx(2 * 0.5**14)
    assert v.diff == pytest.approx(14 / 30)
    assert 0 < v.ci_low < v.diff < v.ci_high
    assert v.summary().startswith("improved: +0.467")


def test_one_row_gain_on_nine_rows_is_no_detectable_difference_and_says_what_size_is_needed():
    initial = [1, 0, 1, 0, 1, 0, 1, 0, 0]
    optimized = [1, 1, 1, 0, 1, 0, 1, 0, 0]
    v = paired_verdict([float(x) for x in initial], [float(x) for x in optimized])
    assert v.outcome == "no_detectable_difference"
    assert v.p_value == 1.0
    assert v.min_detectable_diff > 0.3  # nine rows cannot see small gains
    assert v.n_needed > 9
    assert "could only detect" in v.summary() and "rows would detect" in v.summary()


def test_clear_loss_is_worse():
    v = paired_verdict([1.0] * 12, [0.0] * 12)
    assert v.outcome == "worse" and v.diff == -1.0 and v.losses == 12


def test_graded_scores_use_the_paired_permutation_test():
    initial = [0.2, 0.4, 0.5, 0.3, 0.6, 0.1, 0.2, 0.4, 0.3, 0.5, 0.2, 0.4]
    optimized = [x + 0.3 for x in initial]
    v = paired_verdict(initial, optimized)
    assert v.test == "paired permutation"
    assert v.outcome == "improved" and v.p_value < 0.01


def test_shorter_at_equal_quality_is_said_as_such_not_improved():
    scores = [1.0, 0.0] * 10
    v = paired_verdict(scores, list(scores), initial_words=40, optimized_words=28)
    assert v.outcome == "no_detectable_difference" and not v.improved
    assert v.length_note() == "chosen because it is 12 words shorter at no detectable difference in quality"


def test_a_prompt_chosen_for_its_valid_score_is_not_said_to_be_chosen_for_length():
    """The search picked it for a valid gain the test could not confirm: saying "chosen because it is shorter"
    misstates why (the default demo run: valid 0.5 -> 1.0, held-out +0.5 on 6 rows, p = 0.25)."""
    v = paired_verdict([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [1.0] * 6, initial_words=30, optimized_words=25,
                       valid_gain=0.5)  # fmt: skip
    assert v.outcome == "no_detectable_difference"
    assert v.length_note() == ("chosen for its valid score (+0.500), a gain the held-out test could not confirm; "
                               "it is 5 words shorter")  # fmt: skip
    assert v.ci_low > 0 and "the exact test decides" in v.summary()  # a CI that excludes 0 is not the verdict
    tied = paired_verdict([1.0, 0.0] * 10, [1.0, 0.0] * 10, initial_words=30, optimized_words=25, valid_gain=0.0)
    assert tied.length_note().startswith("chosen because it is 5 words shorter")
    assert "the exact test decides" not in tied.summary()


def test_errors_never_make_an_improvement():
    initial = [0.0] * 20
    optimized = [1.0] * 19 + [0.0]
    assert paired_verdict(initial, optimized).outcome == "improved"
    v = paired_verdict(initial, optimized, errors=1)
    assert v.outcome == "unreliable" and not v.improved
    assert "errored" in v.notes[0] and "not an improvement" in v.summary()
    assert paired_verdict([1.0] * 20, [0.0] * 20, errors=2).outcome == "unreliable"


def test_no_rows_is_an_explicit_no_test_verdict():
    v = paired_verdict([], [])
    assert v.outcome == "no_test" and v.summary().startswith("no held-out test")


def test_unpaired_input_is_refused():
    with pytest.raises(ValueError):
        paired_verdict([1.0], [1.0, 0.0])


def test_bootstrap_ci_is_deterministic_for_a_seed():
    a, b = [0.0, 1.0, 1.0, 0.0, 1.0] * 4, [1.0, 1.0, 0.0, 1.0, 1.0] * 4
    assert paired_verdict(a, b, seed=3).ci_low == paired_verdict(a, b, seed=3).ci_low


def test_balanced_weights_make_the_weighted_mean_balanced_accuracy():
    from promptomatix.metrics.verdict import balanced_weights

    labels = ["a"] * 6 + ["b"] * 2
    hits = [1, 1, 1, 0, 0, 0, 1, 0]  # recall a = 0.5, b = 0.5
    w = balanced_weights(labels)
    assert sum(x * h for x, h in zip(w, hits, strict=True)) / len(hits) == pytest.approx(0.5)
    assert sum(w) / len(w) == pytest.approx(1.0)
    assert balanced_weights(["a", "b", "a", "b"]) is None  # balanced: the plain mean is balanced accuracy
    # with equal weights the exact McNemar test is kept; with unequal ones the weighted permutation test runs
    v = paired_verdict([0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 0], weights=w)
    assert "weighted" in v.test and v.diff == pytest.approx(
        sum(x * (o - i) for x, i, o in zip(w, [0, 0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 0], strict=True)) / 8
    )
