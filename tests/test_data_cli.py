"""Data honesty through the real entry point (`main`) with scripted fake models: a swallowed CSV and too little
data exit 1 with one line naming the fix; a large file is sampled to the caps, says so, and the session stays small.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptomatix.sessions import SessionStore
from tests.cli_run import run_main as run

SCRIPT = {
    "task": {"rules": [[["awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": "Label the review."}]], "default": "not json"},
}
TASK = "Label each review"
FLAGS = ["--input-fields", "review", "--output-fields", "label", "--quiet"]


@pytest.fixture(autouse=True)
def fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fake_lm.json"
    path.write_text(json.dumps(SCRIPT))
    monkeypatch.setenv("PROMPTOMATIX_FAKE_LM", str(path))
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "sessions"))


def write_csv(path: Path, n: int, broken: dict[int, str] | None = None) -> str:
    lines = ["review,label"] + [
        f"{('lovely', 'awful')[i % 2]} film {i},{('positive', 'negative')[i % 2]}" for i in range(n)
    ]
    for line, text in (broken or {}).items():
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)




def test_a_csv_whose_quote_swallows_rows_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "reviews.csv", 24, broken={8: '"lovely film 6,positive'})
    code, _, err = run(capsys, "optimize", TASK, "--data", data, *FLAGS)
    assert code == 1 and "Traceback" not in err
    assert "reviews.csv line 8 opens a quote that is never closed (it swallows lines 8-25)" in err


def test_one_row_is_a_clear_error_not_a_zero_n_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "one.csv", 1)
    code, out, err = run(capsys, "optimize", TASK, "--data", data, "--synthetic-data-size", "0", *FLAGS)
    assert code == 1 and "n=0" not in out
    assert "1 usable row (1 train, 0 valid, 0 test); a run needs at least 1 train, 1 valid, 4 test" in err
    assert "--synthetic-data-size 30" in err
    [session] = SessionStore().list()
    assert session.status == "failed"


def test_a_large_file_is_sampled_to_the_caps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "big.csv", 3000, broken={5: "lovely film 3,"})
    code, out, err = run(capsys, "optimize", TASK, "--data", data, "--dry-run", "--json", *FLAGS)
    assert code == 0, err
    report = json.loads(out)["data_report"]
    assert report["split_sizes"] == {"train": 200, "valid": 100, "test": 300}
    assert "big.csv: 1 row skipped (line 5: empty or missing 'label')" in report["notes"]
    assert any(
        n.startswith("big.csv: sampled 600 of 2,999 usable rows (stratified by 'label'") for n in report["notes"]
    )
    assert sum(1 for _ in Path(tmp_path / "sessions").rglob("session.json")) == 1
    session_file = next(Path(tmp_path / "sessions").rglob("session.json"))
    assert session_file.stat().st_size < 200_000
    # An explicit split size raises the cap, and the sample grows with it.
    code, out, err = run(
        capsys, "optimize", TASK, "--data", data, "--dry-run", "--json", "--train-data-size", "700", *FLAGS
    )
    assert code == 0, err
    assert json.loads(out)["data_report"]["split_sizes"] == {"train": 700, "valid": 100, "test": 300}


def test_repeats_are_dropped_before_a_large_file_is_sampled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """3,000 rows, 1,000 distinct: the sample of 600 held repeats, and the held-out test came out at 181 of 300."""
    lines = ["review,label"] + [f"{('lovely', 'awful')[i % 2]} film {i},{('positive', 'negative')[i % 2]}"
                                for i in range(1000)] * 3  # fmt: skip
    data = tmp_path / "repeats.csv"
    data.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "optimize", TASK, "--data", str(data), "--dry-run", "--json", *FLAGS)
    assert code == 0, err
    report = json.loads(out)["data_report"]
    assert report["split_sizes"] == {"train": 200, "valid": 100, "test": 300}
    assert any(n.startswith("repeats.csv: 2000 rows skipped") and n.endswith(": duplicate)") for n in report["notes"])
    assert any("sampled 600 of 1,000 usable rows" in n for n in report["notes"])


def test_labels_that_match_no_row_name_the_datas_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = write_csv(tmp_path / "reviews.csv", 24)
    code, _, err = run(capsys, "optimize", TASK, "--data", data, "--dry-run", "--labels", "pos,neg",
                       "--synthetic-data-size", "0", *FLAGS)  # fmt: skip
    assert code == 2 and "no row's 'label' is one of them" in err  # --labels is the wrong argument
    assert "the data's labels are positive, negative" in err and "pass --labels with the data's labels" in err
