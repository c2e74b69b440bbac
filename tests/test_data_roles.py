"""Sources of more than one file or split, through the real entry point: a directory reads every CSV/JSON file
with the same line-level errors a single file gets, files and JSON lists named train/valid/test become those
splits, and the report says which file went where. Before, a directory went to `datasets`, which read one
format and its `train` split only, and a JSON file's `test` list was ignored, all without a word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_data_cli import FLAGS, TASK, run, write_csv


def dry(capsys: pytest.CaptureFixture[str], data: Path) -> dict:
    code, out, err = run(capsys, "optimize", TASK, "--data", str(data), "--dry-run", "--json",
                         "--synthetic-data-size", "0", *FLAGS)  # fmt: skip
    assert code == 0, err
    return json.loads(out)["data_report"]


def jsonl(path: Path, n: int, offset: int = 0) -> None:
    rows = [{"review": f"{('lovely', 'awful')[i % 2]} show {i}", "label": ("positive", "negative")[i % 2]}
            for i in range(offset, offset + n)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_directory_reads_every_data_file_and_says_so(tmp_path, capsys):
    d = tmp_path / "reviews"
    d.mkdir()
    jsonl(d / "a.jsonl", 12)
    write_csv(d / "b.csv", 12)
    (d / "README.md").write_text("# about\n")
    report = dry(capsys, d)
    assert report["sources"] == {"user": 24}  # was 12: b.csv was ignored
    assert "reviews: read a.jsonl (12 rows), b.csv (12 rows)" in report["notes"][0]
    assert "left out README.md" in report["notes"][0]


def test_split_files_of_a_directory_become_the_splits(tmp_path, capsys):
    d = tmp_path / "reviews"
    d.mkdir()
    write_csv(d / "train.csv", 16)
    jsonl(d / "test.jsonl", 8, offset=100)
    report = dry(capsys, d)
    assert report["sources"] == {"train": 16, "test": 8} and report["split_sizes"]["test"] == 8  # test.csv was lost
    assert report["test_sources"] == {"given": 8}
    assert "reviews/: test.jsonl read as the test split" in report["notes"]


def test_a_json_file_of_named_splits_keeps_its_test_list(tmp_path, capsys):
    rows = [{"review": f"{('lovely', 'awful')[i % 2]} show {i}", "label": ("positive", "negative")[i % 2]}
            for i in range(24)]  # fmt: skip
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"train": rows[:16], "test": rows[16:]}))
    report = dry(capsys, path)
    assert report["sources"] == {"train": 16, "test": 8} and report["test_sources"] == {"given": 8}
    assert "splits.json: splits.json[test] read as the test split" in report["notes"]


def test_a_bad_file_in_a_directory_is_named_with_its_line(tmp_path, capsys):
    d = tmp_path / "reviews"
    d.mkdir()
    write_csv(d / "a.csv", 12)
    (d / "b.csv").write_bytes("review,label\ncaf\xe9 film,positive\n".encode("latin-1"))
    code, _, err = run(capsys, "optimize", TASK, "--data", str(d), "--dry-run", *FLAGS)
    assert code == 1 and "b.csv line 2: not valid UTF-8" in err and "DatasetGenerationError" not in err


def test_skipped_rows_of_several_files_are_placed_by_file():
    from promptomatix.data.validate import describe_places

    assert describe_places(["a.csv line 2", "a.csv line 5", "b.csv line 3"]) == "a.csv lines 2, 5; b.csv line 3"
    assert describe_places(["line 4", "line 9"]) == "lines 4, 9"


def test_a_json_file_of_splits_ignores_lists_that_are_not_rows(tmp_path, capsys):
    """A "labels" list or an empty "validation" list made the file fail to load (review 10)."""
    rows = [{"review": f"{('lovely', 'awful')[i % 2]} show {i}", "label": ("positive", "negative")[i % 2]}
            for i in range(24)]  # fmt: skip
    path = tmp_path / "splits.json"
    path.write_text(json.dumps({"labels": ["positive", "negative"], "validation": [], "train": rows[:16],
                                "test": rows[16:]}))  # fmt: skip
    report = dry(capsys, path)
    assert report["sources"] == {"train": 16, "test": 8}


def test_split_files_and_local_paths_add_up_and_so_do_their_skips(tmp_path, capsys):
    """--local-train-data-path replaced the directory's train.csv (the note still said it was read); the skipped
    counts of two files kept the last file's only."""
    d = tmp_path / "reviews"
    d.mkdir()
    write_csv(d / "train.csv", 16, broken={3: "lovely film 1,positive", 4: "lovely film 1,positive"})
    jsonl(d / "test.jsonl", 8, offset=100)
    (d / "test.jsonl").write_text((d / "test.jsonl").read_text() * 2)  # each row twice: 8 repeats
    extra = write_csv(tmp_path / "more.csv", 0)
    extra_rows = [f"{('lovely', 'awful')[i % 2]} extra {i},{('positive', 'negative')[i % 2]}" for i in range(6)]
    Path(extra).write_text("review,label\n" + "\n".join(extra_rows) + "\n")
    code, out, err = run(capsys, "optimize", TASK, "--data", str(d), "--local-train-data-path", extra, "--dry-run",
                         "--json", "--synthetic-data-size", "0", *FLAGS)  # fmt: skip
    assert code == 0, err
    report = json.loads(out)["data_report"]
    assert report["sources"]["train"] == 15 + 6 and report["sources"]["test"] == 8  # line 4 repeats line 3
    assert sum(n for k, n in report["skipped"].items() if k.endswith("duplicate")) == 1 + 8
