"""The labelled review CSV the CLI tests run on: alternating positive and negative rows a fake model can tell apart."""

from __future__ import annotations

import csv
from pathlib import Path


def write_reviews_csv(path: Path, n: int = 24) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "label"])
        for i in range(n):
            good = i % 2 == 0
            w.writerow(
                [f"{'great wonderful' if good else 'awful boring'} film {i}", "positive" if good else "negative"]
            )
    return path
