"""Shared pieces of the batch tests: a scripted fake model, a small labelled CSV, and jobs files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

GOOD_PROMPT = "Say negative if the review complains or criticizes, otherwise say positive."
TASK = "Classify the sentiment of a movie review"
SCRIPT = {
    "task": {"rules": [[["complains", "awful"], {"label": "negative"}]], "default": {"label": "positive"}},
    "teacher": {"rules": [['{"prompt"', {"prompt": GOOD_PROMPT}]], "default": {}},
}


def write_data(directory: Path, n: int = 24) -> Path:
    path = directory / "reviews.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "label"])
        for i in range(n):
            good = i % 2 == 0
            w.writerow(
                [f"{'great wonderful' if good else 'awful boring'} film number {i}", "positive" if good else "negative"]
            )
    return path


def write_script(directory: Path, script: dict | None = None) -> Path:
    path = directory / "fake_lm.json"
    path.write_text(json.dumps(script or SCRIPT))
    return path


def write_jobs(directory: Path, body: str, name: str = "jobs.yaml") -> Path:
    """A jobs file beside reviews.csv; every job reads it (defaults) unless it says otherwise."""
    write_data(directory)
    path = directory / name
    path.write_text(
        "defaults: {data: reviews.csv, input_fields: review, output_fields: label, raw_input: " + TASK + "}\n" + body
    )
    return path


class InterruptAt:
    """Wraps a fake task client: raises KeyboardInterrupt (a Ctrl-C) on its n-th call."""

    def __init__(self, inner, at: int) -> None:
        self.inner, self.at, self.n, self.model = inner, at, 0, inner.model

    def complete(self, messages, **kw):
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt
        return self.inner.complete(messages, **kw)
