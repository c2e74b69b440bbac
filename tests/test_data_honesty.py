"""Data honesty (issue 12, part 5): no row is lost without a message naming its line, CSV quoting that swallows
rows stops the run, large inputs are sampled to stated caps, and too little data for a held-out test is an error.
"""

from __future__ import annotations

import copy
import json
import pickle
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from promptomatix.data import (
    DEFAULT_CAPS,
    MIN_ROWS,
    Reservoir,
    SourceRow,
    build_data,
    load_rows,
    resolve_sizes,
    sample_cap,
    sample_rows,
)
from promptomatix.errors import DataError
from promptomatix.task import FieldSpec, TaskSpec, TaskType

SPEC = TaskSpec(
    description="Classify the sentiment of a movie review as positive or negative",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="review")],
    output_fields=[FieldSpec(name="label", labels=["positive", "negative"])],
)
FIELDS = {"input_fields": ["review"], "output_fields": ["label"]}


def reviews_csv(path: Path, n: int = 24, *, broken: dict[int, str] | None = None) -> Path:
    """n rows; `broken` replaces the text of given physical lines (line 1 is the header)."""
    lines = ["review,label"] + [f"review number {i},{('positive', 'negative')[i % 2]}" for i in range(n)]
    for line, text in (broken or {}).items():
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rows(n: int, labels: tuple[str, ...] = ("positive", "negative")) -> list[dict]:
    return [{"review": f"user review {i}", "label": labels[i % len(labels)]} for i in range(n)]


# -- CSV quoting that swallows rows ----------------------------------------------------------------------------


def test_unclosed_quote_is_an_error_naming_the_line_and_the_fix(tmp_path: Path) -> None:
    # The reported case: one stray quote turned 24 rows into 5 with exit 0.
    p = reviews_csv(tmp_path / "reviews.csv", broken={8: '"review number 6,positive'})
    with pytest.raises(DataError) as e:
        load_rows(p, **FIELDS)
    assert "reviews.csv line 8 opens a quote that is never closed (it swallows lines 8-25)" in str(e.value)
    assert "delete the stray quote" in str(e.value)


def test_two_stray_quotes_that_pair_up_are_caught(tmp_path: Path) -> None:
    # Lines 5..9 become one review with the right number of values: only the rows inside give it away.
    p = reviews_csv(tmp_path / "r.csv", broken={5: '"review number 3,negative', 9: 'review number 7",negative'})
    with pytest.raises(DataError, match=r"r\.csv line 5: a quoted value runs to line 9 and swallows 4 row\(s\)"):
        load_rows(p, **FIELDS)


def test_a_quote_closing_mid_value_names_both_lines(tmp_path: Path) -> None:
    p = reviews_csv(tmp_path / "r.csv", broken={4: '"review number 2,positive', 7: '"review" 5,negative'})
    with pytest.raises(DataError, match=r"line 4 opens a quote that closes on line 7 in the middle of a value"):
        load_rows(p, **FIELDS)


def test_real_multiline_values_are_not_flagged(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text(
        'review,label\n"Long review.\nSecond paragraph, with a comma.\nThird.",positive\nshort,negative\n'
        '"a\nb",positive\n',
        encoding="utf-8",
    )
    data = load_rows(p, **FIELDS)
    assert [r["label"] for r in data.rows] == ["positive", "negative", "positive"]
    assert data.rows[0]["review"].count("\n") == 2
    assert data.notes == ["r.csv: 2 rows hold quoted line breaks (lines 2-4, 6-7); 7 lines read as 3 rows"]


@pytest.mark.parametrize("end", ["\r\n", "\r"])
def test_windows_and_old_mac_line_ends(tmp_path: Path, end: str) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(end.join(["review,label", "hi,positive", "yo,negative", ""]).encode())
    assert load_rows(p, **FIELDS).rows == [{"review": "hi", "label": "positive"}, {"review": "yo", "label": "negative"}]


# -- skipped rows are named by line ----------------------------------------------------------------------------


def test_loader_skips_are_noted_with_line_numbers(tmp_path: Path) -> None:
    p = reviews_csv(tmp_path / "reviews.csv", n=20, broken={4: "review number 2,", 9: "  ,negative", 17: "x,"})
    data = load_rows(p, **FIELDS)
    assert data.skipped == {"empty or missing 'label'": 2, "empty or missing 'review'": 1}  # counts stay for JSON
    assert data.notes == [
        "reviews.csv: 2 rows skipped (lines 4, 17: empty or missing 'label')",
        "reviews.csv: 1 row skipped (line 9: empty or missing 'review')",
    ]
    # The notes travel with the rows into the data report, whoever passes them along.
    _, report = build_data(SPEC, teacher=None, user_rows=data.rows)
    assert data.notes[0] in report.notes and data.notes[1] in report.notes


def test_later_drops_name_the_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    items = [{"review": f"r{i}", "label": ("positive", "negative")[i % 2]} for i in range(12)]
    items[5] = {"review": "R0!", "label": "positive"}  # duplicate of line 1 once normalized
    items[8] = {"review": "r8", "label": "meh"}
    p.write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    _, report = build_data(SPEC, teacher=None, user_rows=load_rows(p, **FIELDS).rows)
    assert "r.jsonl: 1 row skipped (line 6: duplicate)" in report.notes
    assert "r.jsonl: 1 row skipped (line 9: label not in label set)" in report.notes
    assert report.skipped == {"user: label not in label set": 1}  # the loader took the duplicate (its note above)
    # Rows passed in memory are named by position.
    mem = [*rows(12), {"review": "user review 3", "label": "negative"}]
    _, report2 = build_data(SPEC, teacher=None, train_rows=mem)
    assert "train rows: 1 row skipped (row 13: duplicate)" in report2.notes


def test_source_rows_survive_copies_and_long_lists_are_shortened() -> None:
    from promptomatix.data.validate import describe_places

    row = SourceRow({"a": 1}, "f.csv", "line 3")
    for clone in (copy.deepcopy(row), pickle.loads(pickle.dumps(row))):
        assert clone == {"a": 1} and (clone.source, clone.place) == ("f.csv", "line 3")
    assert json.dumps(row) == '{"a": 1}'
    assert describe_places([f"line {i}" for i in range(1, 12)]) == "lines 1, 2, 3, 4, 5, 6, 7, 8 … (+3 more)"


# -- large inputs are sampled to caps --------------------------------------------------------------------------


def big_csv(path: Path, n: int, rare_every: int = 10) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write("review,label\n")
        for i in range(n):
            label = "neutral" if i % rare_every == 0 else ("positive", "negative")[i % 2]
            f.write(f"review number {i} with some words to make it longer than a few bytes,{label}\n")
    return path


def test_large_file_is_sampled_seeded_and_stratified(tmp_path: Path) -> None:
    p = big_csv(tmp_path / "big.csv", 5000)
    data = load_rows(p, **FIELDS, max_rows=60, seed=3)
    assert len(data.rows) == 60 and data.total == 5000
    assert Counter(r["label"] for r in data.rows) == {"neutral": 6, "positive": 24, "negative": 30}
    assert data.rows == load_rows(p, **FIELDS, max_rows=60, seed=3).rows
    assert data.rows != load_rows(p, **FIELDS, max_rows=60, seed=4).rows
    assert data.notes == [
        "big.csv: sampled 60 of 5,000 usable rows (stratified by 'label', seed 3) to fit the split caps; "
        "change with --train-data-size/--valid-data-size/--test-data-size"
    ]
    # By default a load reads through the default caps' sample, not the whole file.
    assert len(load_rows(p, **FIELDS).rows) == sum(DEFAULT_CAPS.values())
    assert len(load_rows(p, **FIELDS, max_rows=None).rows) == 5000


def test_sampling_a_large_file_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    p = big_csv(tmp_path / "big.csv", 10_000)  # 0.8 MB of text; reading it whole peaks at about 4.5 MB
    tracemalloc.start()
    try:
        data = load_rows(p, **FIELDS, max_rows=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(data.rows) == 100
    assert peak < 1_500_000, f"peak {peak:,} bytes"  # a sample of 100 rows peaks at about 0.2 MB


def test_reservoir_keeps_rare_labels_and_falls_back_to_uniform() -> None:
    stream = [{"x": i, "y": "rare" if i == 777 else "common"} for i in range(5000)]
    assert any(r["y"] == "rare" for r in sample_rows(stream, 20, label_field="y", seed=0))
    many = [{"x": i, "y": f"v{i}"} for i in range(500)]  # free text, not labels
    res = Reservoir(20, label_field="y", seed=0)
    for r in many:
        res.add(r)
    out = res.rows()
    assert len(out) == 20 and not res.stratified and out == sorted(out, key=lambda r: r["x"])
    assert sample_rows(stream[:5], 20) == stream[:5]  # a short stream is kept whole, in order


def test_split_sizes_are_capped_unless_given() -> None:
    assert resolve_sizes(100_000) == (DEFAULT_CAPS["train"], DEFAULT_CAPS["valid"], DEFAULT_CAPS["test"])
    assert resolve_sizes(100_000, train=500, test=50) == (500, 100, 50)
    assert resolve_sizes(599) == (200, 100, 299)  # spare rows go to the test split, not to waste
    assert sample_cap() == 600 and sample_cap(train=1000) == 1400


def test_large_inputs_make_a_small_session(tmp_path: Path) -> None:
    many = rows(5000)
    splits, report = build_data(SPEC, teacher=None, user_rows=many, seed=1)
    assert splits.sizes == {"train": 200, "valid": 100, "test": 300}
    assert report.unused == 4400 and any("4,400 rows unused: splits capped at train 200" in n for n in report.notes)
    assert len(json.dumps(splits.to_dict())) < 60_000
    # Given splits are capped too, seeded and stratified.
    valid = [{**r, "review": f"valid {i}"} for i, r in enumerate(rows(500))]
    test = [{**r, "review": f"test {i}"} for i, r in enumerate(rows(4))]
    splits2, report2 = build_data(SPEC, teacher=None, train_rows=many, valid_rows=valid, test_rows=test)
    assert splits2.sizes == {"train": 200, "valid": 100, "test": 4}
    assert Counter(r["label"] for r in splits2.train) == {"positive": 100, "negative": 100}
    assert "given train rows: sampled 200 of 5,000 (cap; change with --train-data-size)" in report2.notes


def test_a_repeated_input_with_another_label_is_named_as_a_conflict() -> None:
    """It was a plain "duplicate": the user never learned their data contradicts itself."""
    conflict = [{**r, "label": "negative" if r["label"] == "positive" else "positive"} for r in rows(3)]
    _, report = build_data(SPEC, teacher=None, user_rows=rows(24) + conflict + rows(2))
    assert report.skipped == {"user: same input as an earlier row, another output (the first kept)": 3,
                              "user: duplicate": 2}  # fmt: skip


def test_the_valid_size_is_kept_when_valid_rows_are_carved_from_given_train_rows() -> None:
    """Given train and test rows, the valid split was carved at its default size whatever --valid-data-size said."""
    test = [{**r, "review": f"test {i}"} for i, r in enumerate(rows(8))]
    splits, report = build_data(SPEC, teacher=None, train_rows=rows(24), test_rows=test, valid_size=4)
    assert splits.sizes == {"train": 20, "valid": 4, "test": 8}
    assert "valid split carved from the given train rows (4 rows)" in report.notes


# -- too little data for a held-out test ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 5])
def test_too_few_rows_for_a_held_out_test_is_an_error(n: int) -> None:
    # One row used to give "valid 1.000" and "test 0.000 n=0" with exit 0.
    with pytest.raises(DataError) as e:
        build_data(SPEC, teacher=None, user_rows=rows(n), synthetic_size=0)
    msg = str(e.value)
    assert f"{n} usable row" in msg and "a run needs at least 1 train, 1 valid, 4 test" in msg
    assert "add rows to the data" in msg


def test_the_error_names_the_rows_that_were_dropped(tmp_path: Path) -> None:
    p = tmp_path / "dupes.csv"
    p.write_text("review,label\n" + "same,positive\n" * 6 + "other,negative\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"2 usable rows .*; dupes\.csv: 5 rows skipped \(lines 3, 4, 5, 6, 7: duplicate\)"
    ):
        build_data(SPEC, teacher=None, user_rows=load_rows(p, **FIELDS).rows, synthetic_size=0)
    p2 = tmp_path / "empty.csv"
    p2.write_text("review,label\na,\nb, \n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"no usable data rows: empty\.csv: 2 rows skipped \(lines 2, 3: empty or missing 'label'\)"
    ):
        build_data(SPEC, teacher=None, user_rows=load_rows(p2, **FIELDS).rows)


def test_the_smallest_run_that_passes_and_the_explicit_no_test_state() -> None:
    need = sum(MIN_ROWS.values())
    splits, _ = build_data(SPEC, teacher=None, user_rows=rows(need))
    assert splits.sizes == MIN_ROWS
    splits2, report2 = build_data(SPEC, teacher=None, user_rows=rows(3), test_size=0)
    assert splits2.sizes["test"] == 0 and any(n.startswith("no held-out test (test size 0)") for n in report2.notes)
    with pytest.raises(DataError, match=r"pass --test-data-size 4 or more, or --test-data-size 0"):
        build_data(SPEC, teacher=None, user_rows=rows(30), test_size=2)
    with pytest.raises(DataError, match=r"1 test\); a run needs"):
        build_data(
            SPEC,
            teacher=None,
            train_rows=rows(10),
            valid_rows=rows(3),
            test_rows=[{"review": "t", "label": "positive"}],
        )


def test_a_stalled_teacher_is_named_in_the_error() -> None:
    from promptomatix.lm.fake import FakeLM

    with pytest.raises(DataError, match=r"the teacher wrote 0 of 28 synthetic rows"):
        build_data(SPEC, teacher=FakeLM(default="not json"), user_rows=rows(2), synthetic_size=30, max_batches=2)


# -- malformed JSON files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        (
            "r.json",
            '[{"review": "a", "label": "x"},\n {"review": "b", "label": "y"},\n]\n',
            r"line 3 column 1.*trailing comma",
        ),
        (
            "r.json",
            '{"review": "a", "label": "x"}\n{"review": "b", "label": "y"}\n',
            r"line 2 column 1.*rename the file to \.jsonl",
        ),
        ("r.json", '[{"review": "a", "label": "x"}', r"line 1 column 31.*ends too early"),
        (
            "r.jsonl",
            '{"review": "a", "label": "x"}\n{"review": "b" "label": "y"}\n',
            r"line 2: invalid JSON.*column 16.*fix or delete line 2",
        ),
    ],
)
def test_malformed_json_names_the_position_and_the_fix(tmp_path: Path, name: str, content: str, pattern: str) -> None:
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=pattern):
        load_rows(p, **FIELDS)


def test_bad_utf8_in_a_streamed_file_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"review": "a", "label": "x"}\n{"review": "caf\xe9", "label": "y"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl line 2: not valid UTF-8 \(byte 0xe9 at offset 45\)"):
        load_rows(p, **FIELDS)


def test_a_nan_value_is_an_empty_field_not_a_label() -> None:
    """pandas gives NaN for a blank cell; `str(nan)` would have made "nan" a value, and a class."""
    from promptomatix.data.validate import check_row

    row = {name: "x" for name in SPEC.input_names} | {SPEC.output_names[0]: float("nan")}
    assert check_row(SPEC, row) == (None, f"empty field '{SPEC.output_names[0]}'")


def test_rows_with_a_blank_input_are_named_as_blank_not_as_duplicates(tmp_path: Path) -> None:
    """With no fields declared the loader took blank-review rows for duplicates of each other: "28 rows skipped
    (duplicate) … 2 rows skipped (empty field 'review')", so the user was told to fix 2 rows of 30."""
    p = tmp_path / "blank.csv"
    p.write_text("review,label\n" + "".join(f",{('positive', 'negative')[i % 2]}\n" for i in range(30)), "utf-8")
    with pytest.raises(DataError) as e:
        build_data(SPEC, teacher=None, user_rows=load_rows(p).rows)
    assert "30 rows skipped" in str(e.value) and "empty field 'review'" in str(e.value)
    assert "duplicate" not in str(e.value)


def test_a_test_size_that_takes_every_row_names_the_flag_not_more_data() -> None:
    """60 rows and --test-data-size 100000: the hint said "add rows to the data"; the flag took them."""
    with pytest.raises(DataError, match=r"\(0 train, 0 valid, 60 test\).*pass a smaller --test-data-size: at most 58"):
        build_data(SPEC, teacher=None, user_rows=rows(60), test_size=100_000)
