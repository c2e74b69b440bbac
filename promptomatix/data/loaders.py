"""Read user data (CSV, JSON, JSONL, Hugging Face datasets) into row dicts, with errors users can act on.

Malformed input raises DataError naming the file, the line/row and the column; rows that are merely unusable
(an empty required value) are skipped and counted, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptomatix.data.roles import Part, data_files, left_out_note
from promptomatix.data.sampling import Reservoir
from promptomatix.data.sources import Source, csv_source, json_rows, jsonl_rows, read_text
from promptomatix.data.splits import sample_cap
from promptomatix.data.validate import SourceRow, describe_places, normalize_text
from promptomatix.errors import DataError, DataUsageError
from promptomatix.task.heuristics import OUTPUT_COLUMN_HINTS, discover_labels
from promptomatix.task.models import coerce_value

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SAMPLE", "LoadedData", "LoadedRows", "Part", "discover_labels", "load_rows", "parse_hf_source"]

DEFAULT_SAMPLE = sample_cap()


class LoadedRows(list[dict[str, Any]]):
    """The rows of one source, carrying the loader's notes (skipped lines, sampling) to `build_data`, so the
    account reaches the data report however the rows are passed along."""

    def __init__(self, rows: list[dict[str, Any]], notes: list[str]) -> None:
        super().__init__(rows)
        self.notes = notes


@dataclass
class LoadedData:
    """Rows read from one source, with counts of what was skipped and why."""

    rows: list[dict[str, Any]]
    path: str
    columns: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    total: int = 0
    notes: list[str] = field(default_factory=list)  # one line each, naming the lines of skipped rows


def parse_hf_source(source: str) -> tuple[str, str | None, str]:
    """`hf:NAME[:CONFIG][@SPLIT]` → (name, config, split); split defaults to train."""
    spec = source[3:] if source.startswith("hf:") else source
    spec, _, split = spec.rpartition("@") if "@" in spec else (spec, "", "train")
    name, _, config = spec.partition(":")
    if not name:
        raise DataError(f"{source}: no dataset name", hint="use hf:NAME[:CONFIG][@SPLIT], e.g. hf:imdb@test")
    return name, config or None, split or "train"


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
        raise DataError(
            f"{label}: cannot load dataset ({type(exc).__name__}: {exc})",
            hint="pass a CSV, JSON or JSONL file, a directory of them, a saved dataset, or hf:NAME[@SPLIT]",
        ) from None
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
    if not unused:
        hint = f"every column is already another field: check {flag}"
    elif len(unused) == 1:
        hint = f"pass {flag} {unused[0]}"
    else:
        hint = f"pass {flag} with one of: {', '.join(unused)}"
    raise DataUsageError(f"{label}: column '{name}' not found (columns: {', '.join(columns)}); {hint}")


def _chain(parts: Sequence[Part], left_out: str | None = None) -> Source:
    """Several files (or JSON lists) read as one source, each row placed by its file ("b.csv line 4"), with a
    note of what each gave and which files were left out."""
    opened = [_open(p.path, p.key) for p in parts]
    counts = dict.fromkeys((p.name for p in parts), 0)

    many = len(parts) > 1

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for part, src in zip(parts, opened, strict=True):
            for where, row in src.rows:
                counts[part.name] += 1
                yield (f"{part.name} {where}" if many else where), row
            src.check()

    label = (parts[0].path.parent.name or str(parts[0].path.parent)) if many else parts[0].name
    same = all(o.columns == opened[0].columns for o in opened)
    source = Source(label, rows(), opened[0].columns if same else [])

    def note() -> str | None:
        read = f"{label}: read " + ", ".join(f"{name} ({n} rows)" for name, n in counts.items()) if many else ""
        return "; ".join(n for n in (read, left_out, *(o.note() for o in opened)) if n) or None

    source.note = note
    source.empty = DataError(f"{label}: no rows in {', '.join(p.name for p in parts)}")
    return source


def _open(source: str | Path | Sequence[Part], key: str | None = None) -> Source:
    if isinstance(source, (list, tuple)):
        return _chain(source)
    text_source = str(source)
    path = Path(text_source)
    if path.is_dir() and (files := data_files(path)):  # CSV/JSON files: ours, with their line-level errors
        return _chain([Part(f) for f in files], left_out_note(path.name, path, files))
    if text_source.startswith("hf:") or path.is_dir():
        label, ds = _hf_dataset(source)
        return Source(label, _hf_rows(ds), list(ds.column_names))
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return csv_source(path)
    if suffix == ".json":
        return Source(Part(path, key).name, json_rows(path, read_text(path), key), [])
    if suffix == ".jsonl":
        if not path.exists():
            raise DataUsageError(f"{path}: file not found")
        return Source(path.name, jsonl_rows(path), [])
    if not suffix and not path.exists():  # `squad_v2`: upstream's bare Hugging Face name, read as a file
        raise DataUsageError(f"{path}: no such file", hint=f"for a Hugging Face dataset write hf:{path.name}; "
                             "for a file use .csv, .json or .jsonl")  # fmt: skip
    raise DataUsageError(f"{path.name}: unsupported file type {suffix or '(none)'}", hint="use .csv, .json or .jsonl")


def _stratum(output_fields: Sequence[str] | None, columns: Sequence[str]) -> str | None:
    """The column to stratify a sample on: the one declared output, else the one column named like a label."""
    if output_fields:
        return output_fields[0] if len(output_fields) == 1 else None
    named = [c for c in columns if c.lower() in OUTPUT_COLUMN_HINTS]
    return named[0] if len(named) == 1 else None


def load_rows(
    source: str | Path | Sequence[Part],
    *,
    input_fields: Sequence[str] | None = None,
    output_fields: Sequence[str] | None = None,
    field_map: Mapping[str, str] | None = None,
    field_types: Mapping[str, str] | None = None,
    limit: int | None = None,
    max_rows: int | None = DEFAULT_SAMPLE,
    seed: int = 0,
) -> LoadedData:
    """Read rows from a file or dataset. `field_map` renames source columns to field names before checks.

    A declared field missing from the columns is an error; rows with an empty declared value are skipped and
    counted with their lines. With both input and output fields declared, rows keep only those fields.
    `field_types` (e.g. {"score": "int"}) are checked per row. `max_rows` (default: the sum of the default
    split caps; None reads everything) streams the source through a seeded reservoir, stratified by the output
    column, so a huge file costs only the sample; `sample_cap()` gives the right value for explicit split sizes.
    """
    src = _open(source)
    fmap = dict(field_map or {})
    declared = [*(input_fields or []), *(output_fields or [])]
    restrict = bool(input_fields and output_fields)  # both sides known: rows keep only the task's fields
    places: dict[str, list[str]] = {}
    rows: list[dict[str, Any]] = []
    reservoir: Reservoir | None = None
    total = kept_n = 0
    columns: list[str] | None = None
    unique: set[int] = set()  # hashes of the rows kept (a million rows: tens of MB, not the rows)
    keys: dict[str, None] = {}  # every key of a source without a header line (JSON): a field is missing only if
    for where, raw in src.rows:  # no row has it, not when the first row lacks it
        total += 1
        row = {fmap.get(k, k): v for k, v in raw.items()}
        if not src.columns:
            keys.update(dict.fromkeys(row))
        if columns is None:
            columns = _check_columns(src, fmap, row, input_fields, output_fields, declared, check=bool(src.columns))
            if max_rows is not None:
                reservoir = Reservoir(max_rows, label_field=_stratum(output_fields, columns), seed=seed)
        if limit is not None and kept_n >= limit:
            places.setdefault(f"beyond limit {limit}", []).append(where)
            continue
        row, reason = _clean_row(row, src.label, where, declared, field_types, restrict=restrict)
        if reason is None and not _first_time(row, unique, declared if restrict else ()):
            reason = "duplicate"  # before the sample: a sample of repeats made the held-out test short
        if reason is not None:
            places.setdefault(reason, []).append(where)
            continue
        kept = SourceRow(row, src.label, where)
        kept_n += 1
        if reservoir is not None:
            reservoir.add(kept)
        else:
            rows.append(kept)
    src.check()
    if total == 0:
        raise src.empty
    if not src.columns:
        columns = _check_columns(src, fmap, keys, input_fields, output_fields, declared, check=True)
    return _loaded(src, rows, columns, total, places, reservoir, seed)


def _first_time(row: Mapping[str, Any], unique: set[int], names: Sequence[str]) -> bool:
    """False for a repeat of a row taken before; else the row is remembered. A row with a blank value is left to
    the validator, which names the field (30 rows of blank inputs were "28 duplicates, 2 empty")."""
    if any(v is None or (isinstance(v, float) and v != v) or not str(v).strip() for v in row.values()):
        return True
    key = _dedup_key(row, names)
    if key in unique:
        return False
    unique.add(key)
    return True


def _dedup_key(row: Mapping[str, Any], declared: Sequence[str]) -> int:
    """Rows equal once normalized (the task's fields when both sides are declared, else every value) are one row:
    the validator would drop the second anyway."""
    names = declared or sorted(row)
    return hash(tuple(normalize_text(row.get(n, "")) for n in names))


def _check_columns(
    src: Source,
    fmap: Mapping[str, str],
    row: Mapping[str, Any],
    input_fields: Sequence[str] | None,
    output_fields: Sequence[str] | None,
    declared: Sequence[str],
    *,
    check: bool,
) -> list[str]:
    """The source's columns after renaming (its header, else `row`'s keys); with `check`, a declared field missing
    from them is an error."""
    columns = list(dict.fromkeys([fmap.get(c, c) for c in src.columns] or list(row)))
    if not check:
        return columns
    for name in input_fields or []:
        _resolve(columns, name, src.label, declared, "--input-fields")
    for name in output_fields or []:
        _resolve(columns, name, src.label, declared, "--output-fields")
    return columns


def _clean_row(
    row: dict[str, Any],
    label: str,
    where: str,
    declared: Sequence[str],
    field_types: Mapping[str, str] | None,
    *,
    restrict: bool,
) -> tuple[dict[str, Any], str | None]:
    """The row ready to keep, or the reason to skip it; a value of the wrong type is an error, not a skip."""
    if restrict:
        row = {name: row.get(name) for name in declared}
    empty = next((k for k in declared if row.get(k) is None or not str(row[k]).strip()), None)
    if empty is not None:
        return row, f"empty or missing '{empty}'"
    for name, type_ in (field_types or {}).items():
        if name in row and row[name] is not None:
            try:
                row[name] = coerce_value(row[name], type_)
            except ValueError as exc:
                raise DataError(f"{label} {where}, column '{name}': {exc}") from None
    return row, None


def _loaded(
    src: Source,
    rows: list[dict[str, Any]],
    columns: list[str] | None,
    total: int,
    places: dict[str, list[str]],
    reservoir: Reservoir | None,
    seed: int,
) -> LoadedData:
    """The rows with their account (skips, spanning records, sampling), which travels with them to the report."""
    label = src.label
    if reservoir is not None:
        rows = reservoir.rows()
    data = LoadedData(rows=rows, path=label, columns=columns or [], total=total)
    data.skipped = {reason: len(where) for reason, where in places.items()}
    data.notes = [_skip_note(label, reason, where) for reason, where in places.items()]
    if (spanning := src.note()) is not None:
        data.notes.append(spanning)
    if reservoir is not None and reservoir.sampled:
        how = f"stratified by '{reservoir.label_field}', " if reservoir.stratified else ""
        data.notes.append(
            f"{label}: sampled {len(rows):,} of {reservoir.seen:,} usable rows ({how}seed {seed}) to fit the "
            "split caps; change with --train-data-size/--valid-data-size/--test-data-size"
        )
    if data.notes:
        log.info("%s", "; ".join(data.notes))
    data.rows = LoadedRows(data.rows, data.notes)
    return data


def _skip_note(label: str, reason: str, places: list[str]) -> str:
    """One line a user can act on: "reviews.csv: 3 rows skipped (lines 4, 9, 17: empty or missing 'label')"."""
    n = len(places)
    return f"{label}: {n} row{'s' if n != 1 else ''} skipped ({describe_places(places)}: {reason})"
