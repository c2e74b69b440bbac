"""Text-level metric functions: normalization, SQuAD EM/F1, number extraction, ROUGE-L, chrF, BLEU, JSON parsing."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import pytest

from promptomatix.metrics import structured, text


def test_import_does_not_pull_dspy_or_litellm():
    code = "import sys, promptomatix.metrics; print(any(m.split('.')[0] in ('dspy', 'litellm') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_squad_normalization_exact_match():
    assert text.exact_match("The Eiffel Tower!", "eiffel tower") == 1.0
    assert text.exact_match("Eiffel", "eiffel tower") == 0.0


def test_token_f1_partial_value():
    # normalized pred tokens [eiffel, tower, in, paris], gold [eiffel, tower]: P=2/4, R=2/2 -> F1=2/3
    assert text.token_f1("Eiffel Tower in Paris", "the Eiffel Tower") == pytest.approx(2 / 3)
    assert text.token_f1("London", "Paris") == 0.0


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("The answer is 42.", Fraction(42)),
        ("$1,200.50", Fraction("1200.5")),
        ("#### 7", Fraction(7)),
        ("Answer: -3", Fraction(-3)),
        ("3/4", Fraction(3, 4)),
        ("so the result is \\boxed{12}", Fraction(12)),
        ("5 + 3 = 8, then 8 * 2 = 16. The answer is 16", Fraction(16)),
        ("We get 10 - 3 = 7", Fraction(7)),
    ],
)
def test_extract_number(answer, expected):
    assert text.extract_number(answer) == expected


def test_extract_number_none_when_no_number():
    assert text.extract_number("I do not know") is None


def test_rouge_l_known_value_and_cross_check():
    from rouge_score import rouge_scorer

    pred, ref = "the cat sat on the mat", "the cat was on the mat"
    # LCS = "the cat on the mat" (5 of 6 tokens each side): P = R = F = 5/6
    assert text.rouge_l(pred, ref) == pytest.approx(5 / 6)
    direct = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True).score(ref, pred)["rougeL"].fmeasure
    assert text.rouge_l(pred, ref) == pytest.approx(direct)
    assert text.rouge_l("totally different words", ref) == 0.0


def test_chrf_and_bleu_known_values():
    import sacrebleu

    pred, ref = "the cat sat on the mat", "the cat was on the mat"
    # sacrebleu 2.x: chrF = 62.069..., BLEU = 37.99... on this pair
    assert text.chrf(pred, ref) == pytest.approx(0.6206905839258782, abs=1e-9)
    assert text.chrf(pred, ref) == pytest.approx(sacrebleu.sentence_chrf(pred, [ref]).score / 100)
    assert text.bleu(pred, ref) == pytest.approx(0.3799178428257963, abs=1e-9)
    assert text.chrf(ref, ref) == pytest.approx(1.0)


def test_label_sets_and_set_scores():
    gold = structured.label_set("Sports, Politics")
    pred = structured.label_set('["politics", "tech"]')
    assert gold == {"sports", "politics"} and pred == {"politics", "tech"}
    precision, recall, f1, jaccard = structured.set_scores(pred, gold)
    assert (precision, recall, f1) == (0.5, 0.5, 0.5)
    assert jaccard == pytest.approx(1 / 3)
    assert structured.set_feedback(pred, gold) == "missing labels: sports; extra labels: tech"


@pytest.mark.parametrize(
    "raw",
    [
        '{"a": 1, "b": "x"}',
        'Here you go:\n```json\n{"a": 1, "b": "x"}\n```',
        '{"a": 1, "b": "x"',  # truncated: json_repair
        'the result "a": 1, "b": "x" done',  # regex pairs
    ],
)
def test_parse_json_object_robust(raw):
    assert structured.parse_json_object(raw) == {"a": 1, "b": "x"}


def test_parse_json_object_none_for_prose():
    assert structured.parse_json_object("no json here") is None


def test_field_f1_feedback():
    gold = {"name": "Ann", "date": "2024-01-02", "amount": 12}
    pred = {"name": "ann", "amount": 13, "city": "Rome"}
    precision, recall, f1, feedback = structured.field_f1(pred, gold)
    assert (precision, recall) == (pytest.approx(1 / 3), pytest.approx(1 / 3))
    assert f1 == pytest.approx(1 / 3)
    assert "missing field date" in feedback
    assert "wrong field amount: expected '12', got '13'" in feedback
    assert "extra field city" in feedback
    assert math.isclose(structured.field_f1({"amount": 12.0}, {"amount": 12})[2], 1.0)
