"""A CSV of reports read defensively: one row per study, a key column and the report text.

Columns (names case-insensitive): the key, one of ``study_uid`` (or ``study_instance_uid``),
``accession`` (or ``accession_number``) or ``path``, and the text, ``report`` (or ``report_text``,
``text``). ``--key`` names the key column's kind; without it the first present of study_uid, accession,
path is used.

The rule for a bad file: a fault of the file as a whole (over ``MAX_BYTES``, not UTF-8, no header, no key
or report column, a NUL byte, a field past the csv module's limit of 131072 characters, more than
``MAX_ROWS`` rows) stores nothing and says what and on which line. A bad row (an empty or malformed key,
an empty or overlong text, a key that matches no indexed image, a study given twice) is left out and
listed by its line, and the other rows are stored, in one transaction; when no row is good, nothing is
stored and the file is refused."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from medsearch.errors import InvalidQuery

MAX_BYTES = 64 * 1024 * 1024
MAX_ROWS = 1_000_000
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "study_uid": ("study_uid", "study_instance_uid", "studyinstanceuid"),
    "accession": ("accession", "accession_number", "accessionnumber"),
    "path": ("path",),
}
TEXT_COLUMNS = ("report", "report_text", "text")
_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")


@dataclass
class CsvRow:
    """A row: its line (1-based, where the row starts), its key (as given) and its report text."""

    line: int
    key: str
    text: str


@dataclass
class ParsedCsv:
    """The rows of a report CSV, its key kind and column, and the rows refused while reading."""

    key: str
    key_column: str
    key_index: int
    text_index: int
    rows: list[CsvRow] = field(default_factory=list)
    bad: list[dict[str, object]] = field(default_factory=list)


def parse_reports_csv(data: bytes, key: str | None = None, source: str = "the CSV") -> ParsedCsv:
    """Read ``data`` (a CSV file's bytes). Raises InvalidQuery, naming ``source`` and a line, for a fault of
    the whole file (see the module docstring)."""
    if len(data) > MAX_BYTES:
        raise InvalidQuery(f"{source} is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidQuery(f"{source} is not UTF-8 text (byte {error.start})") from None
    if "\x00" in text:
        raise InvalidQuery(f"{source}, line {text.count(chr(10), 0, text.index(chr(0))) + 1}: a NUL byte")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise InvalidQuery(f"{source} is empty: it needs a header row")
        parsed = _columns(header, key, source)
        _read_rows(reader, parsed, len(header), source)
    except csv.Error as error:
        raise InvalidQuery(f"{source}, line {reader.line_num}: {error}") from None
    return parsed


def _columns(header: list[str], key: str | None, source: str) -> ParsedCsv:
    names = [name.strip().lower() for name in header]
    if key is not None and key not in KEY_COLUMNS:
        raise InvalidQuery(f"unknown key {key!r}; expected one of {', '.join(KEY_COLUMNS)}")
    kinds = [key] if key else list(KEY_COLUMNS)
    found = next(((kind, names.index(alias)) for kind in kinds for alias in KEY_COLUMNS[kind] if alias in names), None)
    if found is None:
        wanted = " or ".join(alias for kind in kinds for alias in KEY_COLUMNS[kind][:1])
        raise InvalidQuery(f"{source} has no key column ({wanted}); its columns: {', '.join(header)[:200]}")
    text_index = next((names.index(alias) for alias in TEXT_COLUMNS if alias in names), None)
    if text_index is None:
        raise InvalidQuery(f"{source} has no report column (report, report_text or text)")
    return ParsedCsv(found[0], header[found[1]].strip(), found[1], text_index)


def _read_rows(reader: Any, parsed: ParsedCsv, width: int, source: str) -> None:
    key_index, text_index = parsed.key_index, parsed.text_index
    line = reader.line_num + 1
    for values in reader:
        if len(parsed.rows) + len(parsed.bad) >= MAX_ROWS:
            raise InvalidQuery(f"{source} has more than {MAX_ROWS} rows; split it")
        problem = _row_problem(values, width, key_index, text_index, parsed.key)
        if problem:
            if any(value.strip() for value in values):
                parsed.bad.append({"line": line, "reason": problem})
        else:
            parsed.rows.append(CsvRow(line, values[key_index].strip(), values[text_index]))
        line = reader.line_num + 1


def _row_problem(values: list[str], width: int, key_index: int, text_index: int, kind: str) -> str | None:
    if len(values) != width:
        return f"{len(values)} fields where the header has {width}"
    key, text = values[key_index].strip(), values[text_index]
    if not key:
        return f"no {kind}"
    if kind == "study_uid" and (len(key) > 64 or not _UID.fullmatch(key)):
        return "the study_uid is not a DICOM UID (digits and dots, at most 64)"
    if not text.strip():
        return "the report is empty"
    return None
