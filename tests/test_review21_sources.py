"""Review 21's source findings: a CSV that starts with a blank line (F3), a FIFO given as data (F6), a URL, a
`Path` and an empty `--data` (F12), a saved DatasetDict's own test split (F14), and a TSV whose text holds
double quotes (F18)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from promptomatix.cli.app import main
from promptomatix.config import RunConfig
from promptomatix.data import load_rows
from promptomatix.data.roles import source_roles
from promptomatix.errors import ConfigurationError, DataError

TASK = "Classify the sentiment of a movie review"
ROWS = "".join(
    f"film {i} was {'great' if i % 2 else 'awful'},{'positive' if i % 2 else 'negative'}\n" for i in range(12)
)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# F3 ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lead", ["\n", "\n\n", "\r\n", "  \n", ",\n"])
def test_blank_lines_before_the_header_are_skipped(tmp_path: Path, lead: str) -> None:
    p = _write(tmp_path / "blank_first.csv", lead + "review,label\n" + ROWS)
    loaded = load_rows(p)
    assert len(loaded.rows) == 12
    assert loaded.columns == ["review", "label"]
    assert any("header read from line" in n for n in loaded.notes)


def test_a_bom_then_a_blank_line_before_the_header_is_read(tmp_path: Path) -> None:
    p = _write(tmp_path / "bom.csv", b"\xef\xbb\xbf\nreview,label\n" + ROWS.encode())
    assert len(load_rows(p).rows) == 12


@pytest.mark.parametrize("text", [b"\n\n\n", b"\xef\xbb\xbf\n", b" \n\r\n"])
def test_a_file_of_blank_lines_is_one_data_error(tmp_path: Path, text: bytes) -> None:
    p = _write(tmp_path / "blank.csv", text)
    with pytest.raises(DataError, match=r"blank\.csv: file has only blank lines"):
        load_rows(p)


def test_a_tab_separated_csv_after_a_blank_line_is_sniffed_from_its_header(tmp_path: Path) -> None:
    p = _write(tmp_path / "tabs.csv", "\nreview\tlabel\n" + ROWS.replace(",", "\t"))
    assert load_rows(p).columns == ["review", "label"]


# F6 ------------------------------------------------------------------------------------------------------------


def _release(fifo: Path) -> None:
    """Let a reader blocked in open() go (it then reads end-of-file)."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.parametrize("name", ["fifo.csv", "fifo.tsv", "fifo.json", "fifo.jsonl"])
def test_a_fifo_is_refused_at_once(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    result: dict[str, Any] = {}

    def load() -> None:
        try:
            load_rows(fifo)
        except Exception as exc:  # the test looks at what was raised
            result["error"] = exc

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    hung = worker.is_alive()
    if hung:
        _release(fifo)
        worker.join(timeout=10)
    assert not hung, "load_rows blocked on a FIFO"
    assert isinstance(result.get("error"), DataError)
    assert "not a regular file (a named pipe)" in str(result["error"])


def test_the_cli_refuses_a_fifo_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    script = _write(tmp_path / "fake.json", json.dumps({"task": {"default": {}}, "teacher": {"default": {}}}))
    env = {**os.environ, "PROMPTOMATIX_FAKE_LM": str(script), "PROMPTOMATIX_SESSIONS_DIR": str(tmp_path / "s")}
    cmd = [sys.executable, "-m", "promptomatix", "optimize", TASK, "--data", str(fifo), "--dry-run", "--quiet"]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    finally:
        _release(fifo)
    assert r.returncode == 2, r.stderr  # a wrong command line, refused before a session exists
    assert "not a regular file (a named pipe)" in r.stderr and "interrupted" not in r.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


# F12 -----------------------------------------------------------------------------------------------------------


def test_a_path_object_is_accepted_as_data(tmp_path: Path) -> None:
    p = _write(tmp_path / "reviews.csv", "review,label\n" + ROWS)
    cfg = RunConfig.from_kwargs(raw_input=TASK, data=p, local_train_data_path=p, sessions_dir=tmp_path)
    assert cfg.data == str(p) and cfg.local_train_data_path == str(p) and cfg.sessions_dir == str(tmp_path)


@pytest.mark.parametrize("url", ["https://example.com/x.csv", "http://example.com/data.jsonl", "s3://bucket/x.csv"])
def test_a_url_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RunConfig.from_kwargs(raw_input=TASK, data=url)
    message = str(info.value)
    assert f"{url}: a URL" in message and "download it first" in message


def test_a_url_passed_to_the_loader_is_named_as_a_url() -> None:
    with pytest.raises(DataError, match=r"https://example\.com/x\.csv: a URL.*download it first"):
        load_rows("https://example.com/x.csv")


def test_a_windows_drive_path_is_not_a_url(tmp_path: Path) -> None:
    assert RunConfig.from_kwargs(raw_input=TASK, data="C:/data/x.csv").data == "C:/data/x.csv"


def test_an_empty_data_is_refused_not_read_as_no_data() -> None:
    with pytest.raises(ConfigurationError, match="empty path"):
        RunConfig.from_kwargs(raw_input=TASK, data="")


def test_an_empty_data_flag_is_a_usage_error_naming_the_flag(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PROMPTOMATIX_SESSIONS_DIR", str(tmp_path / "s"))
    monkeypatch.delenv("PROMPTOMATIX_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        main(["optimize", TASK, "--data", "", "--dry-run", "--quiet"])
    assert info.value.code == 2
    assert "--data is empty" in capsys.readouterr().err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


# F14 -----------------------------------------------------------------------------------------------------------


def _save_dict(path: Path, splits: dict[str, tuple[int, int]]) -> Path:
    datasets = pytest.importorskip("datasets")

    def rows(a: int, b: int) -> Any:
        return datasets.Dataset.from_list(
            [
                {"review": f"film {i} was {'great' if i % 2 else 'awful'}", "label": "pos" if i % 2 else "neg"}
                for i in range(a, b)
            ]
        )

    datasets.DatasetDict({name: rows(a, b) for name, (a, b) in splits.items()}).save_to_disk(str(path))
    return path


def test_a_saved_datasetdicts_test_split_is_the_held_out_test(tmp_path: Path) -> None:
    saved = _save_dict(tmp_path / "saved_dd", {"train": (0, 40), "test": (100, 120)})
    found = source_roles(saved)
    assert found is not None, "the saved dataset's test split was ignored"
    roles, notes = found
    assert set(roles) == {"train", "test"}
    assert len(load_rows(roles["train"]).rows) == 40
    test = load_rows(roles["test"]).rows
    assert len(test) == 20 and all(r["review"].split()[1] >= "100" for r in test)
    assert "saved_dd/: split test read as the test split" in notes


def test_a_saved_split_that_names_no_split_is_left_out_with_a_note(tmp_path: Path) -> None:
    saved = _save_dict(tmp_path / "dd", {"train": (0, 10), "validation": (10, 16), "unsupervised": (20, 30)})
    roles, notes = source_roles(saved) or ({}, [])
    assert set(roles) == {"train", "valid"}
    assert any("left out split unsupervised" in n for n in notes)


def test_a_saved_datasetdict_with_only_train_reads_as_before(tmp_path: Path) -> None:
    saved = _save_dict(tmp_path / "dd", {"train": (0, 10)})
    assert source_roles(saved) is None
    assert len(load_rows(saved).rows) == 10


# F18 -----------------------------------------------------------------------------------------------------------


def _tsv_rows() -> list[tuple[str, str]]:
    return [(f'"Great" film number {i}, I loved it' if i % 2 == 0 else f'awful "boring" film {i}',
             "positive" if i % 2 == 0 else "negative") for i in range(30)]  # fmt: skip


def test_a_tsv_with_literal_quotes_is_read_as_text(tmp_path: Path) -> None:
    rows = _tsv_rows()
    p = _write(tmp_path / "rawquotes.tsv", "review\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in rows))
    loaded = load_rows(p, max_rows=None)
    assert [(r["review"], r["label"]) for r in loaded.rows] == rows
    assert any("quotes read as part of the text" in n for n in loaded.notes)


def test_a_tsv_written_with_csv_quoting_is_still_unquoted(tmp_path: Path) -> None:
    rows = _tsv_rows()
    quoted = "".join('"' + t.replace('"', '""') + f'"\t{lab}\n' for t, lab in rows)  # pandas' to_csv(sep="\t")
    p = _write(tmp_path / "quoted.tsv", "review\tlabel\n" + quoted)
    loaded = load_rows(p, max_rows=None)
    assert [(r["review"], r["label"]) for r in loaded.rows] == rows
    assert not any("quotes read as part" in n for n in loaded.notes)


def test_tsv_errors_talk_about_tsv(tmp_path: Path) -> None:
    from promptomatix.data.textfiles import CsvRecords

    p = _write(tmp_path / "bad.tsv", 'review\tlabel\n"Great" film\tpositive\n')
    records = CsvRecords(p, "\t")
    with pytest.raises(DataError) as info:
        list(records)
    text = f"{info.value.message} {info.value.hint}"
    assert "malformed TSV" in text and "\\t" in text and "\t" not in text


def test_a_saved_test_split_with_hidden_labels_is_left_out(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["n", "p"])})

    def split(a: int, b: int, hidden: bool) -> Any:
        rows = [{"sentence": f"film {i}", "label": -1 if hidden else i % 2} for i in range(a, b)]
        return datasets.Dataset.from_list(rows, features=feats)

    saved = tmp_path / "glue"
    splits = {"train": split(0, 20, False), "validation": split(20, 30, False), "test": split(30, 40, True)}
    datasets.DatasetDict(splits).save_to_disk(str(saved))
    roles, notes = source_roles(saved) or ({}, [])
    assert set(roles) == {"train", "valid"}
    assert any("left out split test (every label is -1" in n for n in notes)
