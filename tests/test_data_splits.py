"""Splits and data building: sizes, stratification, held-out test isolation, mixing user and synthetic rows."""

from __future__ import annotations

import gc
import json
import re
from collections import Counter

import pytest

from promptomatix.data import BackendData, DataSplits, build_data, estimate_data_calls, resolve_sizes, split_rows
from promptomatix.errors import ConfigurationError, DataError
from promptomatix.lm.fake import FakeLM, prompt_text
from promptomatix.task import FieldSpec, TaskSpec, TaskType

SPEC = TaskSpec(
    description="Classify the sentiment of a movie review as positive or negative",
    task_type=TaskType.CLASSIFICATION,
    input_fields=[FieldSpec(name="review")],
    output_fields=[FieldSpec(name="label", labels=["positive", "negative"])],
)


def obedient(messages: list[dict[str, str]]) -> str:
    text = prompt_text(messages)
    if "Write" not in text:  # the blind relabel of a batch: no label given, so the rows count as unchecked
        return "{}"
    count = int(re.search(r"Write (\d+) new", text).group(1))
    batch = re.search(r"batch (\d+)", text).group(1)
    labels = re.search(r"in order: (.*)\.", text).group(1).split(", ")
    return json.dumps({"examples": [{"review": f"synthetic {batch}-{i}", "label": labels[i]} for i in range(count)]})


def rows(n: int, labels: tuple[str, ...] = ("positive", "negative")) -> list[dict]:
    return [{"review": f"user review {i}", "label": labels[i % len(labels)]} for i in range(n)]


def test_default_sizes() -> None:
    assert resolve_sizes(30) == (12, 9, 9)
    assert resolve_sizes(3) == (1, 1, 1)
    assert resolve_sizes(2) == (1, 1, 0)
    assert resolve_sizes(10, train_ratio=0.2) == (2, 4, 4)  # upstream's ratio: rest split valid/test
    assert resolve_sizes(100, train=0.5, valid=10, test=10) == (50, 10, 10)
    with pytest.raises(ConfigurationError):
        resolve_sizes(10, train=-2)


def test_the_test_split_gets_priority_once_train_and_valid_have_working_rows() -> None:
    # 160 rows used to split 64/48/48: a 48-row test cannot tell a 0.15 gain from noise.
    assert resolve_sizes(160) == (34, 26, 100)
    assert resolve_sizes(80) == (24, 24, 32)
    assert resolve_sizes(60) == (24, 18, 18)  # small data keeps the fractions
    assert resolve_sizes(1000) == (200, 100, 300)  # the caps, spare rows to the test
    for n in range(3, 1500, 7):
        tr, va, te = resolve_sizes(n)
        assert tr + va + te <= n and tr >= 1 and va >= 1 and te >= 1
        if n >= 148:
            assert te >= 100 and tr >= 24 and va >= 24, n
    assert resolve_sizes(160, test=48) == (64, 48, 48)  # an explicit size is used as given
    assert resolve_sizes(160, train=64) == (64, 48, 48)  # a given train keeps the fractions for the rest


def test_stratified_split_has_every_label_everywhere() -> None:
    data = rows(40, ("a",) * 6 + ("b",) * 3 + ("c",))  # 24 a, 12 b, 4 c
    for seed in range(5):
        train, valid, test = split_rows(data, label_field="label", seed=seed)
        assert (len(train), len(valid), len(test)) == (16, 12, 12)
        for part in (train, valid, test):
            assert set(Counter(r["label"] for r in part)) == {"a", "b", "c"}
        assert sorted(map(id, train + valid + test)) == sorted(map(id, data))
    assert split_rows(data, label_field="label", seed=1) == split_rows(data, label_field="label", seed=1)
    assert split_rows(data, label_field="label", seed=1) != split_rows(data, label_field="label", seed=2)


def test_backend_view_cannot_reach_test_rows() -> None:
    test = [{"review": "secret", "label": "negative"}]
    splits = DataSplits(rows(4), rows(2), test, input_fields=["review"], output_fields=["label"])
    view = splits.backend_view()
    assert isinstance(view, BackendData)
    assert not hasattr(view, "__dict__") and not any("test" in a for a in dir(view))
    with pytest.raises(AttributeError):
        view.test  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises((AttributeError, TypeError)):
        view.train = ()  # type: ignore[misc]
    # Walk everything reachable from the view: no test row, no DataSplits.
    stack, seen = [view], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type):
            continue
        seen.add(id(obj))
        assert obj is not splits
        assert not (isinstance(obj, str) and obj == "secret")
        stack.extend(gc.get_referents(obj))
    view.train[0]["review"] = "edited by a backend"
    assert splits.train[0]["review"] == "user review 0"
    assert splits.test_rows() == test and splits.sizes == {"train": 4, "valid": 2, "test": 1}
    assert "secret" not in repr(splits)
    assert DataSplits.from_dict(splits.to_dict()).test_rows() == test


def test_build_synthetic_only_30_gives_12_9_9() -> None:
    splits, report = build_data(SPEC, teacher=FakeLM(default=obedient), synthetic_size=30, seed=0)
    assert splits.sizes == {"train": 12, "valid": 9, "test": 9}
    assert report.sources == {"synthetic": 30}
    assert report.synthetic is not None and report.synthetic.accepted == 30 and report.synthetic.batches == 6
    for name in ("train", "valid", "test"):
        assert set(report.label_distribution[name]) == {"positive", "negative"}
    assert report.test_sources == {"synthetic": 9}
    assert estimate_data_calls(synthetic_size=30) == 6 + 6  # six batches and the blind relabel of each


def test_build_mixes_user_rows_and_takes_test_from_them_first() -> None:
    user = [*rows(10), {"review": "User Review 0!", "label": "positive"}, {"review": "x", "label": "meh"}]
    splits, report = build_data(
        SPEC, teacher=FakeLM(default=obedient), user_rows=user, synthetic_size=30, seed=1, skipped={"empty 'x'": 2}
    )
    assert report.sources == {"user": 10, "synthetic": 20}
    assert report.skipped == {"empty 'x'": 2, "user: duplicate": 1, "user: label not in label set": 1}
    assert report.test_sources == {"user": 5, "synthetic": 4}
    assert sum(splits.sizes.values()) == 30 and splits.sizes["test"] == 9
    assert estimate_data_calls(n_user_rows=10, synthetic_size=30) == 4 + 4


def test_enough_user_rows_means_no_synthetic_calls() -> None:
    lm = FakeLM()
    splits, report = build_data(SPEC, teacher=lm, user_rows=rows(40), synthetic_size=30)
    assert lm.calls == [] and report.synthetic is None
    assert splits.sizes == {"train": 16, "valid": 12, "test": 12}


def test_explicit_train_and_valid_are_respected_and_test_is_carved() -> None:
    train, valid = rows(14), [{"review": f"valid {i}", "label": ("positive", "negative")[i % 2]} for i in range(6)]
    splits, report = build_data(SPEC, teacher=FakeLM(), train_rows=train, valid_rows=valid)
    test = splits.test_rows()
    assert len(test) == 6 and splits.sizes["train"] + splits.sizes["valid"] == 14
    assert all(r in train for r in splits.train) and all(r in valid for r in splits.valid)
    assert any("held out 6 rows of train+valid as test" in n for n in report.notes)

    # "user review 0" is also in train: removed from train
    given_test = [{"review": f"user review {i}", "label": ("positive", "negative")[i % 2]} for i in (0, 20, 21, 22)]
    splits2, report2 = build_data(SPEC, teacher=None, train_rows=train, valid_rows=valid, test_rows=given_test)
    assert splits2.test_rows() == given_test and splits2.sizes == {"train": 13, "valid": 6, "test": 4}
    assert report2.skipped == {"train: same input as a held-out test row": 1}  # F11 (review 21): named as a test repeat


def test_no_data_and_no_teacher_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="no usable data rows"):
        build_data(SPEC, teacher=None, synthetic_size=30)


def test_train_ratio_kwarg() -> None:
    splits, _ = build_data(SPEC, teacher=None, user_rows=rows(30), train_ratio=0.2)
    assert splits.sizes == {"train": 6, "valid": 12, "test": 12}


def test_upstream_kwargs_load_local_files(tmp_path) -> None:
    from promptomatix.data import upstream_data_args

    train = tmp_path / "train.csv"
    train.write_text(
        "review,label\n" + "".join(f"r{i},{'positive' if i % 2 else 'negative'}\n" for i in range(12)) + "x,\n"
    )
    test = tmp_path / "test.jsonl"
    test.write_text("\n".join(json.dumps({"review": f"t{i}", "label": "positive"}) for i in range(5)))
    args = upstream_data_args(
        {
            "load_data_local": True,
            "local_train_data_path": str(train),
            "local_test_data_path": str(test),
            "valid_data_size": 4,
            "synthetic_data_size": 10,
            "model_name": "ignored",
        },
        input_fields=["review"],
        output_fields=["label"],
    )
    assert len(args["train_rows"]) == 12 and len(args["test_rows"]) == 4 and args["synthetic_size"] == 10
    assert args["skipped"] == {"train.csv: empty or missing 'label'": 1, "test.jsonl: beyond limit 4": 1}
    splits, report = build_data(SPEC, teacher=None, **args)
    assert splits.sizes["test"] == 4 and splits.sizes["train"] + splits.sizes["valid"] == 12
    assert report.skipped["train.csv: empty or missing 'label'"] == 1
