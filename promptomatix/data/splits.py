"""Train / valid / test splits, with the test split held out from backends by construction.

A backend receives a `BackendData`: copies of train and valid rows and nothing else. It holds no reference to
the `DataSplits` or to any test row, so no attribute walk can reach the held-out data; only the final report
calls `DataSplits.test_rows()`.
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptomatix.errors import ConfigurationError

Row = dict[str, Any]
Size = int | float | None

DEFAULT_VALID_FRACTION = 0.3
DEFAULT_TEST_FRACTION = 0.3
# Rows per split when the user gives no count: enough for a stable score, few enough that a 200k-row file costs
# what a small one does. An explicit --train/valid/test-data-size count is used as given.
DEFAULT_CAPS = {"train": 200, "valid": 100, "test": 300}
# The least data that supports a verdict: one row to learn from, one to choose with, and a held-out test
# that can tell a 0.25 step apart. Below this the run stops (unless the user asks for no test: test size 0).
MIN_ROWS = {"train": 1, "valid": 1, "test": 4}
# The held-out test decides the verdict, and 48 rows cannot tell a 0.15 gain from noise. So once train and valid
# have the rows a search needs (WORKING_ROWS each), the test split gets the next rows, up to TEST_PRIORITY; beyond
# that the fractions hold again (and spare rows over the train/valid caps go to the test, up to its cap).
WORKING_ROWS = 24
TEST_PRIORITY = 100


@dataclass(frozen=True, slots=True)
class BackendData:
    """What an optimizer backend may see: train and valid only (copied, so edits cannot leak back)."""

    train: tuple[Row, ...]
    valid: tuple[Row, ...]
    input_fields: tuple[str, ...] = ()
    output_fields: tuple[str, ...] = ()


class DataSplits:
    """The run's data. Train and valid are public; test is reachable only through `test_rows()`."""

    __slots__ = ("__test", "input_fields", "output_fields", "train", "valid")

    def __init__(
        self,
        train: Sequence[Row],
        valid: Sequence[Row],
        test: Sequence[Row],
        *,
        input_fields: Sequence[str] = (),
        output_fields: Sequence[str] = (),
    ) -> None:
        self.train: list[Row] = list(train)
        self.valid: list[Row] = list(valid)
        self.__test: tuple[Row, ...] = tuple(copy.deepcopy(list(test)))
        self.input_fields = tuple(input_fields)
        self.output_fields = tuple(output_fields)

    def backend_view(self) -> BackendData:
        return BackendData(
            train=tuple(copy.deepcopy(self.train)),
            valid=tuple(copy.deepcopy(self.valid)),
            input_fields=self.input_fields,
            output_fields=self.output_fields,
        )

    def test_rows(self) -> list[Row]:
        """The held-out rows, for the final report only."""
        return copy.deepcopy(list(self.__test))

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.__test)}

    def to_dict(self) -> dict[str, Any]:
        """For session files (the session store, unlike a backend, must keep the test split)."""
        return {
            "train": copy.deepcopy(self.train),
            "valid": copy.deepcopy(self.valid),
            "test": self.test_rows(),
            "input_fields": list(self.input_fields),
            "output_fields": list(self.output_fields),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataSplits:
        """Splits saved by `to_dict`; a value of the wrong shape (a hand-edited session file) is a ValueError
        naming it, not an AttributeError deep in scoring."""
        parts = {name: data.get(name, []) for name in ("train", "valid", "test")}
        for name, rows in parts.items():
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ValueError(f"{name} must be a list of row objects")
        return cls(
            parts["train"],
            parts["valid"],
            parts["test"],
            input_fields=data.get("input_fields", ()),
            output_fields=data.get("output_fields", ()),
        )

    def __repr__(self) -> str:
        s = self.sizes
        return f"DataSplits(train={s['train']}, valid={s['valid']}, test={s['test']})"


def _count(value: Size, n: int, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and 0 <= value < 1:
        return int(value * n + 0.5)
    if isinstance(value, (int, float)) and value >= 0 and float(value).is_integer():
        return int(value)
    raise ConfigurationError(f"{name} must be a count (0, 1, 2, ...) or a fraction below 1, got {value!r}")


def sample_cap(train: Size = None, valid: Size = None, test: Size = None) -> int:
    """How many rows to read from a large source: the sum of the split caps (explicit counts replace them)."""
    total = 0
    for name, value in (("train", train), ("valid", valid), ("test", test)):
        count = _count(value, 0, f"{name} size") if isinstance(value, int) else None
        total += count if count is not None else DEFAULT_CAPS[name]
    return max(1, total)


def resolve_sizes(
    n: int, *, train: Size = None, valid: Size = None, test: Size = None, train_ratio: float | None = None
) -> tuple[int, int, int]:
    """(train, valid, test) counts for n rows; their sum may be below n when the user asks for fewer.

    Sizes the user did not give are fractions of n, capped at DEFAULT_CAPS; the test split gets at least
    MIN_ROWS["test"] rows when n allows it, and rows the capped train split cannot take go to the test split.
    """
    tr, va, te = _count(train, n, "train size"), _count(valid, n, "valid size"), _count(test, n, "test size")
    fixed = {"train": tr is not None, "valid": va is not None, "test": te is not None}
    if train_ratio is not None and tr is None:
        if not 0 < train_ratio <= 1:
            raise ConfigurationError(f"train_ratio must be in (0, 1], got {train_ratio}")
        tr = max(1, int(train_ratio * n + 0.5)) if n else 0
        rest = max(0, n - tr)
        te = rest // 2 if te is None else te
        va = rest - te if va is None else va
    if n < 3:
        te = min(te or 0, n)
        va = min(va if va is not None else (1 if n == 2 else 0), n - te)
    else:
        te_default = min(max(MIN_ROWS["test"], _default_test(n) if tr is None else int(DEFAULT_TEST_FRACTION * n + 0.5)),
                         n - 2)  # fmt: skip
        te = min(te if te is not None else te_default, n)
        va_default = min(_default_valid(n, te, given_train=tr is not None), max(0, n - te - 1))  # keep a train row
        va = min(va if va is not None else va_default, n - te)
    te = te if fixed["test"] else min(te, DEFAULT_CAPS["test"])
    va = va if fixed["valid"] else min(va, DEFAULT_CAPS["valid"])
    tr = min(tr if tr is not None else n - te - va, n - te - va)
    if not fixed["train"]:
        tr = min(tr, DEFAULT_CAPS["train"])
        if not fixed["test"]:  # spare rows make a steadier test rather than going unused
            te = min(DEFAULT_CAPS["test"], n - tr - va)
    return tr, va, te


def _default_test(n: int) -> int:
    """The test split's share: its fraction, or all rows past the working train/valid rows up to TEST_PRIORITY."""
    return max(int(DEFAULT_TEST_FRACTION * n + 0.5), min(TEST_PRIORITY, n - 2 * WORKING_ROWS))


def _default_valid(n: int, te: int, *, given_train: bool) -> int:
    """Valid gets its share of the rows the test leaves (3 of every 7, as 30:40), and WORKING_ROWS of them when
    there are twice that."""
    if given_train:
        return max(1, int(DEFAULT_VALID_FRACTION * n + 0.5))
    rest = n - te
    share = int(rest * DEFAULT_VALID_FRACTION / (1 - DEFAULT_TEST_FRACTION) + 0.5)
    return max(1, share, WORKING_ROWS if rest >= 2 * WORKING_ROWS else 0)


def check_minimums(sizes: dict[str, int], *, no_test: bool = False) -> str | None:
    """Why these split sizes cannot support a verdict (None if they can). `no_test`: the user chose no test."""
    short = [
        name for name, least in MIN_ROWS.items() if sizes.get(name, 0) < least and not (no_test and name == "test")
    ]
    if not short:
        return None
    have = ", ".join(f"{sizes.get(k, 0)} {k}" for k in MIN_ROWS)
    need = ", ".join(f"{MIN_ROWS[k]} {k}" for k in MIN_ROWS if not (no_test and k == "test"))
    total = sum(sizes.values())
    return f"{total} usable row{'s' if total != 1 else ''} ({have}); a run needs at least {need}"


def _stratified_order(rows: Sequence[Row], label_field: str, rng: random.Random) -> list[Row]:
    """Interleave labels so any contiguous slice holds about the overall label proportions."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(label_field))].append(row)
    keyed: list[tuple[float, float, Row]] = []
    for members in groups.values():
        rng.shuffle(members)
        for i, row in enumerate(members):
            keyed.append(((i + 0.5) / len(members), rng.random(), row))
    keyed.sort(key=lambda t: (t[0], t[1]))
    return [row for _, _, row in keyed]


def _repair(parts: list[list[Row]], label_field: str) -> None:
    """Move rows so every label with at least 3 rows appears in each non-empty split."""
    labels: dict[str, int] = defaultdict(int)
    for part in parts:
        for row in part:
            labels[str(row.get(label_field))] += 1
    for label, total in labels.items():
        if total < len(parts):
            continue
        for target in parts:
            if not target or any(str(r.get(label_field)) == label for r in target):
                continue
            donor = max(parts, key=lambda p: sum(str(r.get(label_field)) == label for r in p))
            give = next(r for r in donor if str(r.get(label_field)) == label)
            counts = defaultdict(int)
            for r in target:
                counts[str(r.get(label_field))] += 1
            swap = max(target, key=lambda r: counts[str(r.get(label_field))])
            if counts[str(swap.get(label_field))] < 2:
                continue
            donor[donor.index(give)] = swap
            target[target.index(swap)] = give


def split_rows(
    rows: Sequence[Row],
    *,
    label_field: str | None = None,
    train: Size = None,
    valid: Size = None,
    test: Size = None,
    train_ratio: float | None = None,
    seed: int = 0,
) -> tuple[list[Row], list[Row], list[Row]]:
    """Seeded (train, valid, test); stratified by `label_field`. Rows beyond the requested sizes are unused."""
    n = len(rows)
    tr, va, te = resolve_sizes(n, train=train, valid=valid, test=test, train_ratio=train_ratio)
    rng = random.Random(f"split:{seed}")
    if label_field:
        order = _stratified_order(rows, label_field, rng)
    else:
        order = list(rows)
        rng.shuffle(order)
    parts = [order[:te], order[te : te + va], order[te + va : te + va + tr]]
    if label_field:
        _repair(parts, label_field)
        for part in parts:
            rng.shuffle(part)
    test_part, valid_part, train_part = parts
    return train_part, valid_part, test_part
