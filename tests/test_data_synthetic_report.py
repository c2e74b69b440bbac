"""The data report on teacher-written rows: counts and reasons, the relabel agreement, a noisy teacher stops the
run before optimizing, and a synthetic held-out test is named as such."""

from __future__ import annotations

import json
import re

import pytest

from promptomatix.data import build_data
from promptomatix.errors import DataError
from promptomatix.lm.fake import FakeLM, prompt_text
from tests.test_data_synthetic import CUE, SPEC, relabeler


def teacher(wrong_every: int | None):
    """One example per call; every `wrong_every`-th text reads as the other label."""

    def answer(messages):
        if (relabel := relabeler(messages)) is not None:
            return relabel
        text = prompt_text(messages)
        label = re.search(r"correct label is: (\w+)", text).group(1)
        i = int(re.search(r"draft (\d+)", text).group(1))
        if wrong_every and i % wrong_every == 0:
            label = "negative" if label == "positive" else "positive"
        return json.dumps({"review": f"A {CUE[label]} film, seen on day {i} w{i}a w{i}b w{i}c"})

    return FakeLM(default=answer)


def test_report_counts_rows_and_says_the_test_is_synthetic():
    splits, report = build_data(SPEC, teacher=teacher(wrong_every=5), synthetic_size=24, seed=0, batch_size=1)
    s = report.synthetic
    assert s.accepted == 24 and s.checked >= 24 and s.agreed == 24
    assert s.rejected["label disagrees with a blind relabel"] == s.checked - s.agreed
    notes = " | ".join(report.notes)
    assert f"the teacher wrote {s.generated} rows, 24 kept; dropped: label disagrees with a blind relabel" in notes
    assert f"agreed on 24 of {s.checked} labels" in notes
    assert report.test_sources == {"synthetic": len(splits.test_rows())}
    assert "held-out test is" in notes and "written by the teacher" in notes and "--data" in notes


def test_a_teacher_whose_labels_its_own_relabel_disputes_stops_before_optimizing():
    lm = teacher(wrong_every=2)
    with pytest.raises(DataError) as err:
        build_data(SPEC, teacher=lm, synthetic_size=24, seed=0, batch_size=1)
    assert len(lm.calls) <= 2 * 24  # one round (rows + relabels), not every top-up round: noise is not paid twice
    msg = str(err.value)
    assert "too noisy" in msg and "--data" in msg and "--teacher-model" in msg and "the teacher wrote 24 rows" in msg


def test_a_mixed_test_split_says_how_many_rows_are_synthetic():
    user = [{"review": f"A {CUE[lab]} real film number {i} r{i}a r{i}b", "label": lab}
            for i, lab in enumerate(["positive", "negative"] * 6)]  # fmt: skip
    _, report = build_data(SPEC, teacher=teacher(None), user_rows=user, synthetic_size=30, seed=0, batch_size=1)
    n, real = report.test_sources["synthetic"], report.test_sources["user"]
    assert any(f"{n} of the {n + real} held-out test rows are written by the teacher" in x for x in report.notes)
    _, only_user = build_data(SPEC, teacher=None, user_rows=user * 1, synthetic_size=0, seed=0)
    assert not any("written by the teacher" in x for x in only_user.notes)


def test_the_advice_for_a_real_verdict_never_names_the_teacher_that_wrote_the_rows():
    """The README's first run (qwen2.5-coder-0.5b as teacher, found on the machine) advised "a stronger
    --teacher-model (e.g. local/qwen2.5-coder-0.5b)": the model that had written the rows."""
    for model, advised in (("local/qwen2.5-coder-0.5b", "openai/gpt-4o-mini"), ("local/smollm2-135m", "qwen2.5")):
        lm = teacher(wrong_every=5)
        lm.model = model
        _, report = build_data(SPEC, teacher=lm, synthetic_size=24, seed=0, batch_size=1)
        (note,) = [n for n in report.notes if "for a real verdict" in n]
        advice = note.split("for a real verdict, ")[1]
        assert model not in advice and advised in advice
