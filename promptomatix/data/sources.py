"""One source's rows as (place, row) pairs: CSV/TSV, JSON and JSON Lines files, each error naming the file, the
line and the fix. `loaders` checks, cleans and samples what these yield."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from promptomatix.data.textfiles import CsvRecords, iter_lines, open_data_file, tsv_quoting
from promptomatix.errors import DataError

CONTAINER_KEYS = ("data", "rows", "examples", "train", "items")


def read_text(path: Path) -> str:
    """The whole file as text (JSON needs it whole); a pipe, a URL or a bad byte is one line naming the fix."""
    with open_data_file(path) as f:
        try:
            data = f.read()
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


class Source:
    """One opened source: its label, its columns (when known up front), its rows, and a check run at the end."""

    def __init__(self, label: str, rows: Iterator[tuple[str, dict[str, Any]]], columns: list[str]) -> None:
        self.label = label
        self.rows = rows
        self.columns = columns
        self.check: Callable[[], None] = lambda: None
        self.note: Callable[[], str | None] = lambda: None
        self.empty = DataError(f"{label}: no rows", hint="the file is empty")


def _delimiter(path: Path) -> str:
    """`\t` for .tsv; else `,`, unless the header line has none and has tabs or semicolons (a tab-separated
    file named .csv, a spreadsheet saved where `;` separates values)."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = next((line for line in iter_lines(path) if line.strip()), "")  # blank lines before the header: skipped
    if "," in first:
        return ","
    return next((d for d in ("\t", ";") if d in first), ",")


def csv_source(path: Path) -> Source:
    """A CSV/TSV file's rows by line; a tab-separated file is read with CSV quoting only if it uses it."""
    delimiter = _delimiter(path)
    quoting, raw_line = tsv_quoting(path) if delimiter == "\t" else (csv.QUOTE_MINIMAL, None)
    records = CsvRecords(path, delimiter, quoting)
    it = iter(records)
    first = next(it, None)
    if first is None:
        what = "has only blank lines" if records.lines else "is empty"
        raise DataError(f"{path.name}: file {what}", hint="the first line must name the columns")
    header = [h.strip() for h in first[1]]
    width = len(header)
    named = [(i, h) for i, h in enumerate(header) if h]  # pandas' index (",review,label"), Excel's ",," columns
    names = [h for _, h in named]
    dupes = sorted({h for h in names if names.count(h) > 1})
    if dupes:
        raise DataError(f"{path.name} line {first[0]}: duplicate column {', '.join(dupes)!s}",
                        hint="the header line must name each column once")  # fmt: skip

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for line, values in it:
            if not values or not any(v.strip() for v in values):
                continue
            if len(values) > width and any(v.strip() for v in values[width:]):
                raise DataError(
                    f"{path.name} line {line}: {len(values)} values but the header has {width} columns",
                    hint=f"quote values that contain the delimiter ({_named(delimiter)})",
                )
            yield f"line {line}", {h: values[i] if i < len(values) else None for i, h in named}

    source = Source(path.name, rows(), names)
    source.check = records.check
    unnamed = [str(i + 1) for i, h in enumerate(header) if not h and any(header[i:])]  # not the trailing ones
    notes = [f"{path.name}: values separated by {_named(delimiter)} (the header line has no comma)"
             if delimiter != "," and path.suffix.lower() != ".tsv" else "",
             f"{path.name}: quotes read as part of the text (line {raw_line} does not follow CSV quoting)"
             if raw_line else "",
             f"{path.name}: header read from line {first[0]} (blank lines before it skipped)"
             if first[0] > 1 else "",
             f"{path.name}: column{'s' if len(unnamed) > 1 else ''} {', '.join(unnamed)} "
             f"{'have' if len(unnamed) > 1 else 'has'} no name; not read" if unnamed else ""]  # fmt: skip
    source.note = lambda: "; ".join(n for n in (*notes, records.note()) if n) or None
    source.empty = DataError(f"{path.name}: has a header line but no data rows")
    return source


def _named(delimiter: str) -> str:
    return {",": "commas", "\t": "tabs", ";": "semicolons"}.get(delimiter, repr(delimiter))


def json_hint(text: str, exc: json.JSONDecodeError) -> str:
    """The likely fix for the commonest ways a hand-edited JSON file breaks."""
    if exc.msg == "Extra data":
        return "this looks like JSON Lines (one object per line): rename the file to .jsonl, or wrap the rows in [...]"
    before = text[: exc.pos].rstrip()
    if before.endswith(",") and exc.msg.startswith(("Expecting value", "Expecting property name")):
        return "remove the trailing comma before this point"
    if exc.pos >= len(text.rstrip()):
        return "the file ends too early: is it cut off? close every [ and {"
    return "fix the JSON at that point (check quotes, commas and brackets)"


def json_rows(path: Path, text: str, key: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    if not text.strip():
        raise DataError(f"{path.name}: file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path.name} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg})", hint=json_hint(text, exc)
        ) from None
    del text
    name = f"{path.name}[{key}]" if key else path.name  # one list of a file of splits: named in every error
    if isinstance(data, dict):
        key = key or next((k for k in CONTAINER_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise DataError(f'{path.name}: expected a list of objects or {{"data": [...]}}')
        data = data[key]
    if not isinstance(data, list):
        raise DataError(f"{name}: expected a list of objects, got {type(data).__name__}")
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise DataError(f"{name} item {i}: expected an object, got {type(item).__name__}")
        yield f"item {i}", item


def jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for n, line in enumerate(iter_lines(path), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path.name} line {n}: invalid JSON ({exc.msg} at column {exc.colno})",
                hint=f"fix or delete line {n}; each line must be one complete JSON object",
            ) from None
        if not isinstance(item, dict):
            raise DataError(f"{path.name} line {n}: expected an object, got {type(item).__name__}")
        yield f"line {n}", item
