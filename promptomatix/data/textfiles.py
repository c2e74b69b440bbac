"""Stream CSV and JSON Lines files line by line, and catch CSV quoting that swallows rows.

A stray `"` at the start of a CSV field makes every following line part of one value until the next quote, so
24 rows can parse as 5 and nothing looks wrong. Two signs give it away, and both are errors here, because
training on a fraction of the file without saying so is worse than stopping:
- the parser reaches the end of the file (or a quote followed by text) inside a quoted field (`strict` mode);
- a quoted value spanning several physical lines holds lines that look like rows of their own (they split into
  as many values as the header has columns, and end in a value seen in the last column of ordinary rows).
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from promptomatix.errors import DataError, DataUsageError

__all__ = ["CsvRecords", "iter_lines", "open_data_file", "special_file_message", "tsv_quoting", "url_message"]

_CR = re.compile(r"(?<=\r)(?!\n)")
_FIX = 'put the whole value in quotes ("like, this") or delete the stray quote'
_TSV_FIX = 'delete the stray quote, or write the file with CSV quoting (each quote inside a quoted value as "")'
#: `scheme://…` (and the `scheme:/…` that `Path` makes of it)
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(?=[^/])")
_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))  # fmt: skip
_MAX_SEEN_VALUES = 1000  # distinct last-column values remembered for the swallow check
_MAX_PENDING = 200  # multi-line values kept for the end-of-file check
#: the longest CSV value read (the csv module's default, 131,072 characters, refused long documents as "malformed")
MAX_FIELD_CHARS = 16 * 1024 * 1024


def url_message(text: str) -> str | None:
    """The one line for a URL given as data (`Path` turns `https://x` into `https:/x`, which was then "file not
    found"); None for anything else. Nothing here downloads: a run reads local files and `hf:NAME` only."""
    match = _URL.match(text)
    if match is None:  # (a one-letter scheme is not matched: `C:/data.csv` is a Windows path)
        return None
    url = _URL.sub(lambda m: f"{m.group(1)}://", text, count=1)
    return f"{url}: a URL; data is read from local files only (download it first, then pass the file)"


def special_file_message(text: str) -> str | None:
    """The one line for a path that exists but is neither a regular file nor a directory (a named pipe, a device):
    reading one blocks until something writes to it, so the run hung. None for anything else, missing included."""
    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _not_regular(text, mode)


def _not_regular(path: str | Path, mode: int) -> str:
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"{path}: not a regular file ({kind}); save the data to a file and pass that file"


def open_data_file(path: Path) -> BinaryIO:
    """The file opened for reading, if it is a regular file: `open()` on a named pipe blocks until something
    writes to it, so a FIFO (or a device) given as data hung the run forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataUsageError(url_message(str(path)) or f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise DataError(_not_regular(path, mode))
    try:
        return path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def iter_lines(path: Path) -> Iterator[str]:
    """Decoded lines with their endings; a bad byte is reported by line, and the file is never read whole."""
    f = open_data_file(path)
    offset = 0
    with f:
        for n, raw in enumerate(f, 1):
            start = 3 if n == 1 and raw.startswith(codecs.BOM_UTF8) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as exc:
                pos = start + exc.start
                raise DataError(
                    f"{path.name} line {n}: not valid UTF-8 (byte 0x{raw[pos]:02x} at offset {offset + pos})",
                    hint="save it as UTF-8",
                ) from None
            offset += len(raw)
            if "\r" in text.rstrip("\r\n"):  # old Mac line ends: a lone CR ends a line too
                yield from _CR.split(text)
            else:
                yield text


def _looks_like_row(line: str, delimiter: str, width: int, seen_last: set[str]) -> bool:
    try:
        values = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return False
    return len(values) == width and values[-1].strip() in seen_last


def _raise_field_limit() -> None:
    if csv.field_size_limit() < MAX_FIELD_CHARS:  # process-wide, and only ever raised
        csv.field_size_limit(MAX_FIELD_CHARS)


def tsv_quoting(path: Path) -> tuple[int, int | None]:
    """How to read a tab-separated file: with CSV quoting if the whole file parses so (pandas' `to_csv(sep="\t")`
    quotes values that hold quotes), else with quotes as plain text (most TSV corpora and `cut`/`paste` output,
    where `"Great" film` is ordinary text that CSV quoting refused as malformed). The line of the first quoting
    error is returned with `csv.QUOTE_NONE` so the choice can be noted."""
    _raise_field_limit()
    reader = csv.reader(iter_lines(path), delimiter="\t", strict=True)
    try:
        for _ in reader:
            pass
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            return csv.QUOTE_MINIMAL, None  # not a quoting question: the reading pass reports it
        return csv.QUOTE_NONE, reader.line_num
    return csv.QUOTE_MINIMAL, None


class CsvRecords:
    """Records of a CSV file with the physical lines each spans; iterate it, then call `check()`. Blank lines
    before the header are skipped, as after it (some exports start with one; it crashed with IndexError)."""

    def __init__(self, path: Path, delimiter: str, quoting: int = csv.QUOTE_MINIMAL) -> None:
        self.path = path
        self.delimiter = delimiter
        self.lines = 0
        _raise_field_limit()
        self._reader = csv.reader(iter_lines(path), delimiter=delimiter, strict=True, quoting=quoting)
        self._width = 0
        self._records = 0
        self._seen_last: set[str] = set()
        self._pending: list[tuple[int, int, list[str]]] = []
        self.spans: list[tuple[int, int]] = []  # records that span several lines (the first few)
        self.n_spanning = 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """(first line, values) per record; the first record is the header."""
        prev = 0
        while True:
            try:
                values = next(self._reader)
            except StopIteration:
                self.lines = self._reader.line_num
                return
            except csv.Error as exc:
                raise self._malformed(prev + 1, self._reader.line_num, str(exc)) from None
            start, end = prev + 1, self._reader.line_num
            prev = end
            if not self._width:
                if not any(v.strip() for v in values):
                    continue  # a blank line (or one of bare delimiters) before the header
                self._width = len(values)
            self._records += 1
            if end > start:
                self.n_spanning += 1
                if len(self.spans) < 8:
                    self.spans.append((start, end))
            if end > start and len(self._pending) < _MAX_PENDING:
                self._pending.append((start, end, values))
            elif end == start and values and len(values) == self._width and len(self._seen_last) < _MAX_SEEN_VALUES:
                self._seen_last.add(values[-1].strip())
            yield start, values

    def check(self) -> None:
        """After reading: a quoted value that holds whole rows means a stray quote swallowed them."""
        if self._width < 2:
            return
        for start, end, values in self._pending:
            for value in values:
                for offset, line in enumerate(value.split("\n")[1:], 1):
                    if _looks_like_row(line, self.delimiter, self._width, self._seen_last):
                        raise DataError(
                            f"{self.path.name} line {start}: a quoted value runs to line {end} and swallows "
                            f"{end - start} row(s) (line {start + offset} reads {line.strip()[:40]!r})",
                            hint=self._fix,
                        )

    def note(self) -> str | None:
        """Quoted line breaks that passed the checks are still worth one line: a user can spot a stray quote."""
        if not self.n_spanning:
            return None
        shown = ", ".join(f"{a}-{b}" for a, b in self.spans) + (" …" if self.n_spanning > len(self.spans) else "")
        n = self.n_spanning
        return (
            f"{self.path.name}: {n} row{'s hold' if n != 1 else ' holds'} quoted line breaks (lines {shown}); "
            f"{self.lines:,} lines read as {self._records - 1:,} rows"
        )

    @property
    def _fix(self) -> str:
        return _TSV_FIX if self.delimiter == "\t" else _FIX

    def _malformed(self, start: int, end: int, message: str) -> DataError:
        name, kind = self.path.name, "TSV" if self.delimiter == "\t" else "CSV"
        message = message.replace("\t", "\\t")  # a raw tab in "'\t' expected after '\"'" showed as blank
        if "unexpected end of data" in message:
            swallowed = f" (it swallows lines {start}-{end})" if end > start else ""
            return DataError(f"{name} line {start} opens a quote that is never closed{swallowed}", hint=self._fix)
        if "field larger than field limit" in message:
            return DataError(f"{name} line {start}: a value longer than {MAX_FIELD_CHARS:,} characters",
                             hint="shorten it, or check for a stray quote that swallows the rest of the file")  # fmt: skip
        if end > start and "expected after" in message:
            return DataError(
                f"{name} line {start} opens a quote that closes on line {end} in the middle of a value "
                f"(lines {start}-{end} read as one row)",
                hint=self._fix,
            )
        return DataError(
            f"{name} line {end}: malformed {kind} ({message})", hint='write a quote inside a quoted value as ""'
        )
