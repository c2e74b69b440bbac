"""User data, synthetic data and held-out splits. Cheap to import: `datasets` loads only for hf: sources."""

from __future__ import annotations

from promptomatix.data.builder import DataReport, SyntheticSummary, build_data, estimate_data_calls
from promptomatix.data.loaders import LoadedData, discover_labels, load_rows, parse_hf_source
from promptomatix.data.sampling import Reservoir, sample_rows
from promptomatix.data.splits import (
    DEFAULT_CAPS,
    MIN_ROWS,
    BackendData,
    DataSplits,
    check_minimums,
    resolve_sizes,
    sample_cap,
    split_rows,
)
from promptomatix.data.synthetic import SyntheticReport, diversity_hint, generate_synthetic
from promptomatix.data.upstream import UPSTREAM_DATA_KEYS, upstream_data_args
from promptomatix.data.validate import SourceRow, check_row, normalize_text, validate_rows

__all__ = [
    "DEFAULT_CAPS",
    "MIN_ROWS",
    "UPSTREAM_DATA_KEYS",
    "BackendData",
    "DataReport",
    "DataSplits",
    "LoadedData",
    "Reservoir",
    "SourceRow",
    "SyntheticReport",
    "SyntheticSummary",
    "build_data",
    "check_minimums",
    "check_row",
    "discover_labels",
    "diversity_hint",
    "estimate_data_calls",
    "generate_synthetic",
    "load_rows",
    "normalize_text",
    "parse_hf_source",
    "resolve_sizes",
    "sample_cap",
    "sample_rows",
    "split_rows",
    "upstream_data_args",
    "validate_rows",
]
