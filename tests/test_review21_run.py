"""Review 21, the run's side: wrong data/spec arguments refused before a session (F7), the dry run deciding on the
rows validation keeps and never writing data (F5, F13), labels only the test file has (F8), split sizes (F9) and
field names the dspy backend cannot carry (F17)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from promptomatix.api import process_input
from promptomatix.cli.fakes import clients_from_script
from promptomatix.errors import DataError, PromptomatixError, UsageError

TASK = "Classify the sentiment of a movie review"


def _csv(path: Path, header: list[str], rows: list[tuple]) -> str:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def _reviews(n: int, empty_label_every: int = 0) -> list[tuple[str, str]]:
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        if empty_label_every and i % empty_label_every == 0:
            label = ""
        rows.append((f"{'great wonderful' if i % 2 == 0 else 'awful boring'} film {i}", label))
    return rows


def _clients() -> dict:
    return clients_from_script({"task": {"default": {"label": "positive"}}, "teacher": {"default": {}}})


def _sessions(d: Path) -> list[Path]:
    return [p for p in d.iterdir() if p.is_dir()] if d.exists() else []


def _refused(tmp_path: Path, **kw) -> tuple[PromptomatixError, dict]:
    clients, sd = _clients(), tmp_path / "s"
    with pytest.raises(PromptomatixError) as e:
        process_input(raw_input=TASK, dry_run=True, sessions_dir=str(sd), clients=clients, **kw)
    return e.value, {"calls": len(clients["teacher"].calls), "sessions": _sessions(sd)}


@pytest.fixture
def reviews(tmp_path: Path) -> str:
    return _csv(tmp_path / "reviews.csv", ["review", "label"], _reviews(40))


# -- F7 -------------------------------------------------------------------------------------------------------


def test_f7_wrong_data_arguments_are_usage_errors_before_a_session(tmp_path, reviews):
    """A missing file, an unread type, a column the file lacks: exit 2, no `failed` session, nothing spent."""
    parquet = tmp_path / "reviews.parquet"
    parquet.write_text("x")
    cases = [dict(data=str(tmp_path / "nope.csv")), dict(data=str(parquet)),
             dict(data=reviews, input_fields=["text"])]  # fmt: skip
    for kw in cases:
        err, seen = _refused(tmp_path, **kw)
        assert isinstance(err, UsageError) and isinstance(err, DataError), (kw, err)
        assert err.exit_code == 2 and seen == {"calls": 0, "sessions": []}, (kw, err, seen)


def test_f7_wrong_spec_flags_are_usage_errors_before_any_call(tmp_path, reviews):
    """An unknown --task-type, a one-value --labels (it was refused after the teacher's spec call) and
    --sample-data that is not JSON rows."""
    for kw in (dict(task_type="nope"), dict(labels=["positive"]), dict(sample_data="not json")):
        err, seen = _refused(tmp_path, data=reviews, **kw)
        assert isinstance(err, UsageError) and err.exit_code == 2, (kw, err)
        assert seen == {"calls": 0, "sessions": []}, (kw, seen)


def test_f7_cli_missing_file_exits_2(tmp_path, monkeypatch):
    from promptomatix.cli.app import main

    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    with pytest.raises(SystemExit) as e:
        main(["optimize", TASK, "--data", str(tmp_path / "nope.csv"), "--dry-run", "--quiet"])
    assert e.value.code == 2
    assert _sessions(tmp_path / "s") == []


# -- F5 / F13 -------------------------------------------------------------------------------------------------


def test_f13_dry_run_never_writes_synthetic_rows_and_counts_them(tmp_path):
    """35 rows, 7 with an empty label: 28 usable < 30. The dry run built the data for real (teacher calls for
    synthetic rows) while its estimate said data 0."""
    data = _csv(tmp_path / "r35.csv", ["review", "label"], _reviews(35, empty_label_every=5))
    clients = _clients()
    rep = process_input(raw_input=TASK, data=data, dry_run=True, sessions_dir=str(tmp_path / "s"), clients=clients)
    assert len(clients["teacher"].calls) <= rep.estimated_calls["spec"]  # the spec call only, never data
    assert rep.estimated_calls["data"] > 0
    assert len(rep.rows["train"]) == 28
    assert any("2 synthetic rows" in n for n in rep.data_report["notes"])


def test_f5_dry_run_shows_only_rows_the_run_keeps(tmp_path):
    """20 rows, 10 with an empty review: the dry run listed the empty ones as train rows and planned on 20."""
    rows = [(f"great film {i}" if i % 2 == 0 else "", "positive" if i % 4 == 0 else "negative") for i in range(20)]
    data = _csv(tmp_path / "r20bad.csv", ["review", "label"], rows)
    rep = process_input(raw_input=TASK, data=data, dry_run=True, sessions_dir=str(tmp_path / "s"),
                        clients=_clients())  # fmt: skip
    assert len(rep.rows["train"]) == 10 and all(r["review"] for r in rep.rows["train"])
    assert any("20 synthetic rows" in n for n in rep.data_report["notes"])
    assert any("10 rows skipped" in n for n in rep.data_report["notes"])


def test_labels_no_row_carries_are_refused_before_any_call(tmp_path, reviews):
    """--labels pos,neg on a file labelled positive/negative dropped every row, found after the teacher's spec call
    and leaving a failed session; the output column is known here by its name, or given."""
    for kw in (dict(labels=["pos", "neg"]), dict(labels=["pos", "neg"], output_fields=["label"])):
        for dry in (True, False):
            clients, sd = _clients(), tmp_path / f"s{dry}"
            with pytest.raises(UsageError, match=r"--labels pos, neg: no row's 'label' is one of them") as e:
                process_input(raw_input=TASK, data=reviews, dry_run=dry, sessions_dir=str(sd), clients=clients, **kw)
            assert "positive, negative" in e.value.message and e.value.exit_code == 2
            assert (len(clients["teacher"].calls), _sessions(sd)) == (0, [])
    rep = process_input(raw_input=TASK, data=reviews, labels=["Positive", "negative", "neutral"], dry_run=True,
                        sessions_dir=str(tmp_path / "ok"), clients=_clients())  # fmt: skip
    assert len(rep.rows["train"]) > 0  # one of them matching (in another case) is enough to go on


def test_f5_dry_run_refuses_what_the_run_refuses(tmp_path):
    """--labels that match none of the rows: the dry run passed (planning 30 synthetic rows on 20 raw rows). Here the
    output column is not named like one, so only the data stage can tell."""
    data = _csv(tmp_path / "r20.csv", ["review", "mood"], _reviews(20))
    for dry in (True, False):
        clients = _clients()
        with pytest.raises(DataError, match="no usable data rows") as e:
            process_input(raw_input=TASK, data=data, labels=["pos", "neg"], dry_run=dry,
                          sessions_dir=str(tmp_path / f"s{dry}"), clients=clients)  # fmt: skip
        assert "pass labels with" in (e.value.hint or "")
        spec_calls = [c for c in clients["teacher"].calls if "task specifications" in c["messages"][0]["content"]]
        assert len(clients["teacher"].calls) == len(spec_calls)  # no synthetic rows paid for


# -- F8 / F9 --------------------------------------------------------------------------------------------------


def test_f8_labels_only_in_the_test_file_are_named_with_the_fix(tmp_path):
    d = tmp_path / "ov3"
    d.mkdir()
    _csv(d / "train.csv", ["review", "label"], _reviews(40))
    test = [(f"film number {i} was {w}", w2) for i, (w, w2) in
            enumerate([("great", "positive"), ("bad", "negative"), ("fine", "neutral")] * 10)]  # fmt: skip
    _csv(d / "test.csv", ["review", "label"], test)
    rep = process_input(raw_input=TASK, data=str(d), dry_run=True, sessions_dir=str(tmp_path / "s"),
                        clients=_clients())  # fmt: skip
    note = next((n for n in rep.data_report["notes"] if "'neutral'" in n), "")
    assert "--labels positive,negative,neutral" in note, rep.data_report["notes"]


def test_f9_a_cut_split_size_is_said_and_test_size_0_with_a_test_file_is_refused(tmp_path, reviews):
    rep = process_input(raw_input=TASK, data=reviews, train_data_size=100, dry_run=True,
                        sessions_dir=str(tmp_path / "s1"), clients=_clients())  # fmt: skip
    assert any("asked for 100 train rows" in n and "--train-data-size" in n for n in rep.data_report["notes"])
    test = _csv(tmp_path / "test.csv", ["review", "label"], [(f"another film {i}", "positive") for i in range(5)])
    err, seen = _refused(tmp_path, data=reviews, local_test_data_path=test, test_data_size=0)
    assert isinstance(err, UsageError) and "--test-data-size 0" in err.message and seen["sessions"] == []


# -- F17 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["self", "instructions", "model_config"])
def test_f17_dspy_unusable_column_names_are_refused_before_anything(tmp_path, column):
    data = _csv(tmp_path / f"kw_{column}.csv", [column, "label"], _reviews(30))
    err, seen = _refused(tmp_path, data=data, backend="dspy")
    assert isinstance(err, UsageError) and repr(column) in err.message, err
    assert "backend='meta'" in (err.hint or "") and seen == {"calls": 0, "sessions": []}


def test_f17_the_reserved_names_are_the_ones_dspy_refuses():
    """The static list (no DSPy import in the checks) covers what DSPy itself refuses or crashes on."""
    dspy = pytest.importorskip("dspy")
    from promptomatix.backends.dspy_names import dspy_unusable_names

    for name in ("self", "instructions", "signature", "model_config", "fields", "review", "label", "text"):
        try:
            sig = dspy.Signature({name: (str, dspy.InputField()), "zz": (str, dspy.OutputField())}, "x")
            dspy.Example(**{name: "a", "zz": "b"}).with_inputs(name)
            broken = name in ("demos", "config", "lm") or sig is None
        except Exception:
            broken = True
        assert bool(dspy_unusable_names([name])) == broken, name


def test_labels_are_checked_against_the_output_not_an_input_named_like_one(tmp_path):
    """A grading task (question, answer → grade): the input `answer` is not the output, and JSON-list cells are the
    data stage's to judge; both were refused with "no row's 'answer' is one of them" (review 27, #1, #7)."""
    rows = [(f"question {i}", f"answer {i}", "correct" if i % 2 else "incorrect") for i in range(30)]
    data = _csv(tmp_path / "grade.csv", ["question", "answer", "grade"], rows)
    rep = process_input(raw_input="Grade the answer", data=data, input_fields=["question", "answer"],
                        labels=["correct", "incorrect"], dry_run=True, sessions_dir=str(tmp_path / "s"),
                        clients=_clients())  # fmt: skip
    assert rep.output_fields == ["grade"]
    from types import SimpleNamespace

    from promptomatix.run.inputs import check_labels_in_rows

    cfg = SimpleNamespace(labels=["sports", "news"], output_fields=None, input_fields=None)
    check_labels_in_rows(cfg, [{"text": "t", "tags": '["sports", "news"]'}])  # not refused here


def test_a_dry_run_whose_teacher_fails_is_fine_when_the_run_would_not_ask_it_again(tmp_path):
    """DSPy bootstrap with every field given: the spec falls back when the teacher fails, and the run never asks it
    again; the dry run exited 1 "a run would fail too" while the run itself exited 0 (review 27, #2)."""
    from promptomatix.testing.fault_server import FaultServer

    data = _csv(tmp_path / "r.csv", ["review", "label"], _reviews(30))
    clients = _clients()
    with FaultServer("500") as teacher_server:
        from promptomatix.lm.factory import create_client

        clients["teacher"] = create_client("openai/t", api_base=teacher_server.base_url, api_key="sk-test-1234")
        rep = process_input(raw_input=TASK, data=data, backend="dspy", dspy_optimizer="bootstrap", dry_run=True,
                            sessions_dir=str(tmp_path / "s"), clients=clients)  # fmt: skip
    assert rep.estimated_calls["total"] > 0
