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
import re
from collections.abc import Iterator
from pathlib import Path

from promptomatix.errors import DataError

__all__ = ["CsvRecords", "iter_lines"]

_CR = re.compile(r"(?<=\r)(?!\n)")
_FIX = 'put the whole value in quotes ("like, this") or delete the stray quote'
_MAX_SEEN_VALUES = 1000  # distinct last-column values remembered for the swallow check
_MAX_PENDING = 200  # multi-line values kept for the end-of-file check
#: the longest CSV value read (the csv module's default, 131,072 characters, refused long documents as "malformed")
MAX_FIELD_CHARS = 16 * 1024 * 1024


def iter_lines(path: Path) -> Iterator[str]:
    """Decoded lines with their endings; a bad byte is reported by line, and the file is never read whole."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
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


class CsvRecords:
    """Records of a CSV file with the physical lines each spans; iterate it, then call `check()`."""

    def __init__(self, path: Path, delimiter: str) -> None:
        self.path = path
        self.delimiter = delimiter
        self.lines = 0
        if csv.field_size_limit() < MAX_FIELD_CHARS:  # process-wide, and only ever raised
            csv.field_size_limit(MAX_FIELD_CHARS)
        self._reader = csv.reader(iter_lines(path), delimiter=delimiter, strict=True)
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
            self._records += 1
            if not self._width:
                self._width = len(values)
            if end > start:
                self.n_spanning += 1
                if len(self.spans) < 8:
                    self.spans.append((start, end))
            if end > start and len(self._pending) < _MAX_PENDING:
                self._pending.append((start, end, values))
            elif end == start and len(values) == self._width and len(self._seen_last) < _MAX_SEEN_VALUES:
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
                            hint=_FIX,
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

    def _malformed(self, start: int, end: int, message: str) -> DataError:
        name = self.path.name
        if "unexpected end of data" in message:
            swallowed = f" (it swallows lines {start}-{end})" if end > start else ""
            return DataError(f"{name} line {start} opens a quote that is never closed{swallowed}", hint=_FIX)
        if "field larger than field limit" in message:
            return DataError(f"{name} line {start}: a value longer than {MAX_FIELD_CHARS:,} characters",
                             hint="shorten it, or check for a stray quote that swallows the rest of the file")  # fmt: skip
        if end > start and "expected after" in message:
            return DataError(
                f"{name} line {start} opens a quote that closes on line {end} in the middle of a value "
                f"(lines {start}-{end} read as one row)",
                hint=_FIX,
            )
        return DataError(
            f"{name} line {end}: malformed CSV ({message})", hint='write a quote inside a quoted value as ""'
        )
