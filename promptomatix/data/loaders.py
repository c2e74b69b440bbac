"""Read user data (CSV, JSON, JSONL, Hugging Face datasets) into row dicts, with errors users can act on.

Malformed input raises DataError naming the file, the line/row and the column; rows that are merely unusable
(an empty required value) are skipped and counted, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptomatix.errors import DataError
from promptomatix.spec.heuristics import OUTPUT_COLUMN_HINTS, discover_labels
from promptomatix.spec.models import coerce_value

log = logging.getLogger(__name__)

__all__ = ["LoadedData", "discover_labels", "load_rows", "parse_hf_source"]

_CONTAINER_KEYS = ("data", "rows", "examples", "train", "items")


@dataclass
class LoadedData:
    """Rows read from one source, with counts of what was skipped and why."""

    rows: list[dict[str, Any]]
    path: str
    columns: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    total: int = 0


def parse_hf_source(source: str) -> tuple[str, str | None, str]:
    """`hf:NAME[:CONFIG][@SPLIT]` → (name, config, split); split defaults to train."""
    spec = source[3:] if source.startswith("hf:") else source
    spec, _, split = spec.rpartition("@") if "@" in spec else (spec, "", "train")
    name, _, config = spec.partition(":")
    if not name:
        raise DataError(f"{source}: no dataset name", hint="use hf:NAME[:CONFIG][@SPLIT], e.g. hf:imdb@test")
    return name, config or None, split or "train"


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path.name} line {line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
            hint="save it as UTF-8",
        ) from None


def _csv_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path.name}: file is empty", hint="the first line must name the columns") from None
    except csv.Error as exc:
        raise DataError(f"{path.name} line 1: malformed CSV ({exc})") from None
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if not any(header) or dupes:
        what = f"duplicate column {', '.join(dupes)!s}" if dupes else "empty header line"
        raise DataError(f"{path.name} line 1: {what}", hint="the first line must name each column once")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path.name} line {reader.line_num}: malformed CSV ({exc})") from None
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            raise DataError(
                f"{path.name} line {reader.line_num}: {len(values)} values but the header has {len(header)} columns",
                hint="quote values that contain the delimiter",
            )
        row = dict(zip(header, values, strict=False))  # short rows: missing values
        yield f"line {reader.line_num}", {h: row.get(h) for h in header}


def _json_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not text.strip():
        raise DataError(f"{path.name}: file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})") from None
    if isinstance(data, dict):
        key = next((k for k in _CONTAINER_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise DataError(f'{path.name}: expected a list of objects or {{"data": [...]}}')
        data = data[key]
    if not isinstance(data, list):
        raise DataError(f"{path.name}: expected a list of objects, got {type(data).__name__}")
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise DataError(f"{path.name} item {i}: expected an object, got {type(item).__name__}")
        yield f"item {i}", item


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name} line {n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(item, dict):
            raise DataError(f"{path.name} line {n}: expected an object, got {type(item).__name__}")
        yield f"line {n}", item


def _hf_dataset(source: str | Path, split: str | None = None) -> tuple[str, Any]:
    """Load a hub dataset (`hf:`) or a local dataset directory; `datasets` is imported only here."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise DataError("reading Hugging Face datasets needs the 'datasets' package") from None
    text = str(source)
    if text.startswith("hf:"):
        name, config, split = parse_hf_source(text)
    else:
        name, config, split = text, None, split or "train"
    label = f"hf:{name}" if text.startswith("hf:") else Path(name).name
    try:
        if Path(name).is_dir():
            try:
                ds = datasets.load_from_disk(name)
            except FileNotFoundError:  # a directory of data files rather than save_to_disk output
                ds = datasets.load_dataset(name, config, split=split)
        else:
            ds = datasets.load_dataset(name, config, split=split)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many unrelated types; show its message with the source
        raise DataError(f"{label}: cannot load dataset ({type(exc).__name__}: {exc})") from None
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DataError(f"{label}: no split {split!r} (splits: {', '.join(ds)})", hint=f"use {label}@SPLIT")
        ds = ds[split]
    return label, ds


def _hf_rows(ds: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, item in enumerate(ds, 1):
        yield f"row {i}", dict(item)


def _resolve(columns: Sequence[str], name: str, label: str, other: Sequence[str], flag: str) -> None:
    if name in columns:
        return
    unused = [c for c in columns if c not in other]
    named = [c for c in unused if c.lower() in OUTPUT_COLUMN_HINTS]
    if len(named) == 1:  # "sentiment" is a better guess for a missing output than "text"
        unused = named if flag == "--output-fields" else [c for c in unused if c not in named]
    hint = f"pass {flag} {unused[0]}" if len(unused) == 1 else f"pass {flag} with one of: {', '.join(unused)}"
    raise DataError(f"{label}: column '{name}' not found (columns: {', '.join(columns)}); {hint}")


def load_rows(
    source: str | Path,
    *,
    input_fields: Sequence[str] | None = None,
    output_fields: Sequence[str] | None = None,
    field_map: Mapping[str, str] | None = None,
    field_types: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> LoadedData:
    """Read rows from a file or dataset. `field_map` renames source columns to field names before checks.

    A declared field missing from the columns is an error; rows with an empty declared value are skipped and
    counted. With both input and output fields declared, rows keep only those fields. `field_types` (e.g. {"score": "int"}) are checked per row.
    """
    text_source = str(source)
    path = Path(text_source)
    rows_iter: Iterable[tuple[str, dict[str, Any]]]
    if text_source.startswith("hf:") or path.is_dir():
        label, ds = _hf_dataset(source)
        columns = list(ds.column_names)
        rows_iter = _hf_rows(ds)
    else:
        label = path.name
        suffix = path.suffix.lower()
        readers = {".csv": _csv_rows, ".tsv": _csv_rows, ".json": _json_rows, ".jsonl": _jsonl_rows}
        if suffix not in readers:
            raise DataError(f"{label}: unsupported file type {suffix or '(none)'}", hint="use .csv, .json or .jsonl")
        text = _read_text(path)
        rows_iter = readers[suffix](path, text)
        columns = []
        if suffix in (".csv", ".tsv"):
            rows_iter = iter(rows_iter)
            first = next(rows_iter, None)  # also validates the header
            if first is None:
                raise DataError(f"{label}: has a header line but no data rows")
            columns = list(first[1])
            rows_iter = _chain(first, rows_iter)
    fmap = dict(field_map or {})
    declared = [*(input_fields or []), *(output_fields or [])]
    skipped: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    total = 0
    checked_columns = False
    for where, raw in rows_iter:
        total += 1
        row = {fmap.get(k, k): v for k, v in raw.items()}
        if not checked_columns:
            cols = list(dict.fromkeys([fmap.get(c, c) for c in columns] or list(row)))
            for name in input_fields or []:
                _resolve(cols, name, label, declared, "--input-fields")
            for name in output_fields or []:
                _resolve(cols, name, label, declared, "--output-fields")
            columns, checked_columns = cols, True
        if limit is not None and len(rows) >= limit:
            skipped[f"beyond limit {limit}"] += 1
            continue
        if input_fields and output_fields:  # both sides known: keep only the task's fields
            row = {name: row.get(name) for name in declared}
        empty = next((k for k in declared if row.get(k) is None or not str(row[k]).strip()), None)
        if empty is not None:
            skipped[f"empty or missing '{empty}'"] += 1
            continue
        for name, type_ in (field_types or {}).items():
            if name in row and row[name] is not None:
                try:
                    row[name] = coerce_value(row[name], type_)
                except ValueError as exc:
                    raise DataError(f"{label} {where}, column '{name}': {exc}") from None
        rows.append(row)
    if total == 0:
        raise DataError(f"{label}: no rows", hint="the file is empty")
    if skipped:
        log.info("%s: skipped %s", label, dict(skipped))
    return LoadedData(rows=rows, path=label, columns=columns, skipped=dict(skipped), total=total)


def _chain(first: tuple[str, dict[str, Any]], rest: Iterator[tuple[str, dict[str, Any]]]) -> Iterator:
    yield first
    yield from rest
