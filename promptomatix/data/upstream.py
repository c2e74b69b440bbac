"""Upstream Promptomatix's data kwargs, translated to `build_data` arguments so old calls keep working.

Upstream read `local_train_data_path` as train and used `local_test_data_path` as validation data; here a test
file is what its name says, the held-out test split (valid is carved from train instead).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from promptomatix.data.loaders import load_rows
from promptomatix.errors import ConfigurationError

UPSTREAM_DATA_KEYS = (
    "train_data",
    "valid_data",
    "load_data_local",
    "local_train_data_path",
    "local_test_data_path",
    "train_data_size",
    "valid_data_size",
    "synthetic_data_size",
    "train_ratio",
)


def _rows(value: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise ConfigurationError(f"{name} must be a list of objects (one per example row)")
    return [dict(r) for r in value]


def upstream_data_args(
    kwargs: Mapping[str, Any],
    *,
    input_fields: list[str] | None = None,
    output_fields: list[str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `build_data` from upstream-style kwargs (local files are loaded here)."""
    args: dict[str, Any] = {}
    skipped: Counter[str] = Counter()
    notes: list[str] = []
    if kwargs.get("train_data"):
        args["train_rows"] = _rows(kwargs["train_data"], "train_data")
    if kwargs.get("valid_data"):
        args["valid_rows"] = _rows(kwargs["valid_data"], "valid_data")
    for key, target, limit_key in (
        ("local_train_data_path", "train_rows", "train_data_size"),
        ("local_test_data_path", "test_rows", "valid_data_size"),
    ):
        path = kwargs.get(key)
        if not path:
            continue
        loaded = load_rows(path, input_fields=input_fields, output_fields=output_fields, limit=kwargs.get(limit_key))
        args[target] = args.get(target, []) + loaded.rows
        skipped.update({f"{loaded.path}: {reason}": n for reason, n in loaded.skipped.items()})
        notes += loaded.notes
    if kwargs.get("synthetic_data_size") is not None:
        args["synthetic_size"] = int(kwargs["synthetic_data_size"])
    if kwargs.get("train_data_size") is not None:
        args["train_size"] = int(kwargs["train_data_size"])
    if kwargs.get("valid_data_size") is not None:
        args["valid_size"] = int(kwargs["valid_data_size"])
    if kwargs.get("train_ratio") is not None:
        args["train_ratio"] = float(kwargs["train_ratio"])
    if skipped:
        args["skipped"] = dict(skipped)
    if notes:
        args["notes"] = notes
    return args
