"""Seeded, stratified sampling of a row stream of unknown length, so a 200k-row file costs a few hundred rows.

A `Reservoir` keeps a uniform sample of at most `k` rows (reservoir sampling), plus one reservoir per label
while the label column has few distinct values. At the end, labels get places in proportion to their counts in
the whole stream (every label at least one place while there is room), so a rare class is not lost to chance.
Memory is bounded by `k` times the number of labels, whatever the stream's length.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_STRATA", "Reservoir", "sample_rows"]

Row = dict[str, Any]

MAX_STRATA = 50  # more distinct values than this: not a label column, sample uniformly


class Reservoir:
    """At most `k` rows of a stream, seeded; stratified by `label_field` while it looks like a label."""

    def __init__(self, k: int, *, label_field: str | None = None, seed: int = 0) -> None:
        if k < 1:
            raise ValueError(f"a sample needs at least one row, got k={k}")
        self.k = k
        self.label_field = label_field
        self.seen = 0
        self._rng = random.Random(f"sample:{seed}")
        self._uniform: list[tuple[int, Row]] = []
        self._by_label: dict[str, list[tuple[int, Row]]] | None = {} if label_field else None
        self._counts: Counter[str] = Counter()

    def _offer(self, res: list[tuple[int, Row]], n: int, item: tuple[int, Row]) -> None:
        if len(res) < self.k:
            res.append(item)
            return
        j = self._rng.randrange(n)
        if j < self.k:
            res[j] = item

    def add(self, row: Row) -> None:
        self.seen += 1
        item = (self.seen, row)
        self._offer(self._uniform, self.seen, item)
        if self._by_label is None or self.label_field is None:
            return
        key = str(row.get(self.label_field))
        if key not in self._by_label and len(self._by_label) >= MAX_STRATA:
            self._by_label = None  # free-text outputs: the uniform sample is the right one
            return
        self._counts[key] += 1
        self._offer(self._by_label.setdefault(key, []), self._counts[key], item)

    @property
    def sampled(self) -> bool:
        """True when rows were left out (the stream was longer than k)."""
        return self.seen > self.k

    @property
    def stratified(self) -> bool:
        return self.sampled and self._by_label is not None

    def rows(self) -> list[Row]:
        """The sample, in stream order (the whole stream when it had at most k rows)."""
        if not self.stratified or self._by_label is None:
            return [row for _, row in sorted(self._uniform, key=lambda t: t[0])]
        quotas = _quotas(self._counts, self.k, self.seen)
        picked: list[tuple[int, Row]] = []
        for key in sorted(self._by_label):
            members = sorted(self._by_label[key], key=lambda t: t[0])
            self._rng.shuffle(members)  # reservoir slots are not exchangeable; a shuffle makes any prefix uniform
            picked.extend(members[: quotas.get(key, 0)])
        return [row for _, row in sorted(picked, key=lambda t: t[0])]


def _quotas(counts: Counter[str], k: int, total: int) -> dict[str, int]:
    """Largest-remainder allocation of k places in proportion to counts; each label gets one place if room."""
    exact = {key: k * c / total for key, c in counts.items()}
    quotas = {key: int(v) for key, v in exact.items()}
    for key in sorted(exact, key=lambda x: (-(exact[x] - quotas[x]), x))[: k - sum(quotas.values())]:
        quotas[key] += 1
    for key in sorted(counts, key=lambda x: (counts[x], x)):
        if quotas[key] == 0:
            donor = max(quotas, key=lambda x: (quotas[x], x))
            if quotas[donor] <= 1:
                break
            quotas[donor] -= 1
            quotas[key] = 1
    return quotas


def sample_rows(rows: Iterable[Row], k: int, *, label_field: str | None = None, seed: int = 0) -> list[Row]:
    """A seeded sample of at most k rows (all of them, in order, when there are no more than k)."""
    res = Reservoir(k, label_field=label_field, seed=seed)
    for row in rows:
        res.add(row)
    return res.rows()
