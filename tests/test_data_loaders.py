"""Loaders: each format, field mapping, skipped-row counts, and each malformed-input error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptomatix.data import discover_labels, load_rows, parse_hf_source
from promptomatix.errors import DataError

ROWS = [
    {"review": "Great film", "label": "positive"},
    {"review": "Awful", "label": "negative"},
    {"review": "Loved it", "label": "positive"},
]


def _write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_csv(tmp_path: Path) -> None:
    p = _write(tmp_path / "reviews.csv", 'review,label,extra\nGreat film,positive,x\n"Awful, really",negative,y\n')
    data = load_rows(p, input_fields=["review"], output_fields=["label"])
    assert data.rows == [
        {"review": "Great film", "label": "positive"},
        {"review": "Awful, really", "label": "negative"},
    ]
    assert data.columns == ["review", "label", "extra"] and data.skipped == {} and data.total == 2


def test_csv_bom_and_all_columns(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.csv", "\ufefftext,label\nhi,a\nyo,\n".encode())
    assert load_rows(p).rows == [{"text": "hi", "label": "a"}, {"text": "yo", "label": ""}]
    # Only the output declared: the other columns stay (they are the inputs), empty outputs are counted.
    data = load_rows(p, output_fields=["label"])
    assert data.rows == [{"text": "hi", "label": "a"}] and data.skipped == {"empty or missing 'label'": 1}


def test_json_list_and_container(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.json", json.dumps(ROWS))
    assert load_rows(p, input_fields=["review"], output_fields=["label"]).rows == ROWS
    p2 = _write(tmp_path / "r2.json", json.dumps({"data": ROWS}))
    assert load_rows(p2).rows == ROWS


def test_jsonl_with_field_map_types_and_limit(tmp_path: Path) -> None:
    lines = [json.dumps({"text": f"t{i}", "stars": str(i)}) for i in range(5)]
    p = _write(tmp_path / "r.jsonl", "\n".join(lines) + "\n\n")
    data = load_rows(
        p,
        input_fields=["review"],
        output_fields=["stars"],
        field_map={"text": "review"},
        field_types={"stars": "int"},
        limit=3,
    )
    assert data.rows == [{"review": f"t{i}", "stars": i} for i in range(3)]
    assert data.skipped == {"beyond limit 3": 2}


def test_empty_values_are_skipped_and_counted(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.csv", "review,label\nok,positive\n  ,negative\nfine,\nshort\n")
    data = load_rows(p, input_fields=["review"], output_fields=["label"])
    assert data.rows == [{"review": "ok", "label": "positive"}]
    assert data.skipped == {"empty or missing 'review'": 1, "empty or missing 'label'": 2}
    assert data.total == 4


def test_hf_local_dataset_dir(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    target = tmp_path / "ds"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(target))
    data = load_rows(target, input_fields=["review"], output_fields=["label"])
    assert data.rows == ROWS and data.path == "ds"
    data2 = load_rows(f"hf:{target}", output_fields=["label"])
    assert len(data2.rows) == 3
    datasets.DatasetDict({"test": datasets.Dataset.from_list(ROWS)}).save_to_disk(str(tmp_path / "dd"))
    assert load_rows(f"hf:{tmp_path / 'dd'}@test").rows == ROWS
    with pytest.raises(DataError, match=r"no split 'train' \(splits: test\)"):
        load_rows(tmp_path / "dd")


def test_parse_hf_source() -> None:
    assert parse_hf_source("hf:glue:sst2@validation") == ("glue", "sst2", "validation")
    assert parse_hf_source("hf:imdb") == ("imdb", None, "train")


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "pattern"),
    [
        (
            "reviews.csv",
            "text,sentiment\nhi,positive\n",
            {"input_fields": ["text"], "output_fields": ["label"]},
            r"reviews\.csv: column 'label' not found \(columns: text, sentiment\); pass --output-fields sentiment",
        ),
        (
            "reviews.csv",
            "text,sentiment\nhi,positive\n",
            {"input_fields": ["review"], "output_fields": ["sentiment"]},
            r"column 'review' not found .*pass --input-fields text",
        ),
        ("reviews.csv", "", {}, r"reviews\.csv: file is empty"),
        ("reviews.csv", "text,label\n", {}, r"reviews\.csv: has a header line but no data rows"),
        ("reviews.csv", "text,label\na,b\nc,d,e\n", {}, r"reviews\.csv line 3: 3 values but the header has 2"),
        ("reviews.csv", "text,text\na,b\n", {}, r"reviews\.csv line 1: duplicate column"),
        (
            "reviews.csv",
            b"text,label\nok,a\ncaf\xe9,b\n",
            {},
            r"reviews\.csv line 3: not valid UTF-8.*save it as UTF-8",
        ),
        ("reviews.jsonl", '{"a": 1}\n{"a": 2}\n{"a": \n', {}, r"reviews\.jsonl line 3: invalid JSON \(Expecting value"),
        ("reviews.jsonl", '{"a": 1}\n[1, 2]\n', {}, r"reviews\.jsonl line 2: expected an object, got list"),
        ("reviews.jsonl", "\n\n", {}, r"reviews\.jsonl: no rows"),
        ("reviews.json", '[{"a": 1},\n {"a": }]', {}, r"reviews\.json line 2 column 8: invalid JSON"),
        ("reviews.json", '[{"a": 1}, "x"]', {}, r"reviews\.json item 2: expected an object, got str"),
        ("reviews.json", "", {}, r"reviews\.json: file is empty"),
        ("reviews.json", "[]", {}, r"reviews\.json: no rows"),
        ("reviews.json", '{"x": 1}', {}, r"expected a list of objects"),
        (
            "reviews.csv",
            "text,score\na,1\nb,high\n",
            {"field_types": {"score": "int"}},
            r"reviews\.csv line 3, column 'score': expected an integer, got 'high'",
        ),
        ("reviews.txt", "x", {}, r"reviews\.txt: unsupported file type \.txt"),
    ],
)
def test_malformed_input_errors(tmp_path: Path, name: str, content: str | bytes, kwargs: dict, pattern: str) -> None:
    p = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=pattern):
        load_rows(p, **kwargs)


def test_a_wrong_argument_is_a_usage_error_a_malformed_file_is_not(tmp_path: Path) -> None:
    """The loader says which is which (exit 2 / exit 1): the CLI matched its messages' text to tell them apart."""
    from promptomatix.errors import DataUsageError

    for name in ("nope.csv", "nope.jsonl", "nope.json"):
        with pytest.raises(DataUsageError, match="file not found"):
            load_rows(tmp_path / name)
    with pytest.raises(DataUsageError, match="unsupported file type"):
        load_rows(_write(tmp_path / "reviews.txt", "x"))
    with pytest.raises(DataUsageError, match="column 'text' not found"):
        load_rows(_write(tmp_path / "r.csv", "review,label\na,b\n"), input_fields=["text"])
    with pytest.raises(DataError) as e:
        load_rows(_write(tmp_path / "bad.json", '{"x": 1}'))
    assert not isinstance(e.value, DataUsageError)


def test_an_empty_directory_names_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot load dataset") as e:
        load_rows(tmp_path / "empty", input_fields=["review"], output_fields=["label"])
    assert "pass a CSV, JSON or JSONL file" in e.value.hint


def test_discover_labels() -> None:
    rows = [{"l": "b"}, {"l": "a"}, {"l": "B "}, {"l": None}, {"l": "a"}, {"l": "c"}, {"l": "a"}]
    assert discover_labels(rows, "l") == ["a", "b", "c"]
    assert discover_labels([{"l": "x, y"}, {"l": "y"}], "l", multi=True) == ["y", "x"]


def test_a_json_row_without_the_output_is_skipped_wherever_it_is(tmp_path: Path) -> None:
    """The first object decided the columns: lacking 'label' there stopped the run with "pass --output-fields with
    one of: " (an empty list), while the same object second was a skipped row."""
    rows = [{"review": "no label here"}, *ROWS]
    p = _write(tmp_path / "r.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    data = load_rows(p, input_fields=["review"], output_fields=["label"])
    assert len(data.rows) == 3 and data.skipped == {"empty or missing 'label'": 1}
    nowhere = _write(tmp_path / "n.jsonl", "".join(json.dumps({"review": r["review"]}) + "\n" for r in ROWS))
    with pytest.raises(DataError) as e:
        load_rows(nowhere, input_fields=["review"], output_fields=["label"])
    assert "column 'label' not found (columns: review)" in str(e.value) and "one of: " not in str(e.value)


def test_a_long_document_in_a_csv_loads(tmp_path: Path) -> None:
    """A 200,000-character value was "malformed CSV (field larger than field limit (131072))"; as JSONL it loaded."""
    long = "word " * 40_000
    p = _write(tmp_path / "docs.csv", f'review,label\n"{long}",positive\nshort one,negative\n')
    data = load_rows(p, input_fields=["review"], output_fields=["label"])
    assert len(data.rows) == 2 and len(data.rows[0]["review"]) == len(long)


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("review;label\nGreat film;positive\nAwful;negative\n", "separated by semicolons"),  # "2 values … 1 column"
        ("review\tlabel\nGreat film\tpositive\nAwful\tnegative\n", "separated by tabs"),  # "pass --input-fields review<TAB>label"
        ("review,label,,\nGreat film,positive,,\nAwful,negative,,\n", None),  # Excel: "duplicate column  "
    ],
)
def test_spreadsheet_csv_exports_load(tmp_path: Path, text: str, note: str | None) -> None:
    data = load_rows(_write(tmp_path / "export.csv", text), input_fields=["review"], output_fields=["label"])
    assert data.rows == ROWS[:2]
    assert (note is None and not data.notes) or any(note in n for n in data.notes)


def test_unnamed_columns_are_left_out_with_a_note(tmp_path: Path) -> None:
    """pandas' `to_csv()` writes its index under an empty name (",review,label"): such columns are not read."""
    p = _write(tmp_path / "pandas.csv", ",review,label\n0,Great film,positive\n1,Awful,negative\n")
    data = load_rows(p, input_fields=["review"], output_fields=["label"])
    assert data.rows == ROWS[:2] and "pandas.csv: column 1 has no name; not read" in data.notes
