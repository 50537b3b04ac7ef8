"""Sidecar metadata: a CSV whose rows are joined to images by path, file name or SOP instance UID
(``medsearch.indexer.sidecar_join``), and whose other columns become typed, filterable fields
(``medsearch.storage.models.ImageField``). The key column is named by the user, or found by name (``JOIN_COLUMNS``),
or else found by its values (the column whose values name indexed images). Columns that clash with built-in
metadata are imported under a prefix (``csv_modality``; reported), or renamed or skipped as asked.

Column types are inferred from all of a column's non-empty values: numbers (0/1 label columns stay
numbers), booleans (true/false, yes/no), dates (YYYY-MM-DD or YYYYMMDD), else text. Re-importing a file
replaces the values it set before.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medsearch.errors import InvalidQuery
from medsearch.indexer.sidecar_join import Joiner, guess_key
from medsearch.storage.file_records import image_keys, replace_fields
from medsearch.storage.models import METADATA_COLUMNS
from medsearch.storage.store import Store

JOIN_COLUMNS = ("path", "file", "filename", "file_name", "sop_instance_uid")
RESERVED = set(METADATA_COLUMNS) | {"id", "path", "indexed_at", "score", "probability"}
CLASH_PREFIX = "csv_"
"""Put before a column named like built-in metadata when no other prefix, rename or skip is given."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")


@dataclass
class SidecarReport:
    """What an import did: the ``key`` column (``key_found``: chosen because its values name indexed
    images), rows matched to images, the keys of rows that matched none, the keys that name same-named
    files in several folders (with those files), the fields written and their types, the columns imported
    under another name because they clash with built-in metadata (``renamed``: column -> field), the
    columns that had no value for any matched image (not imported), and a hint when nothing matched."""

    rows: int = 0
    matched_rows: int = 0
    images_updated: int = 0
    key: str = ""
    key_found: bool = False
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass(frozen=True)
class Columns:
    """How the CSV's columns are read: the ``key`` column (None: the first of ``JOIN_COLUMNS`` present,
    else the column whose values name indexed images), ``rename`` (CSV name -> field name),
    ``clash_prefix`` (put before any other name that clashes with built-in metadata; None:
    ``CLASH_PREFIX``), ``skip`` (columns not imported)."""

    key: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    clash_prefix: str | None = None
    skip: Sequence[str] = ()


def import_sidecar(store: Store, csv_path: Path, *, key: str | None = None, rename: Mapping[str, str] | None = None,
                   clash_prefix: str | None = None, skip: Sequence[str] = (),
                   root: Path | None = None) -> SidecarReport:
    """Join ``csv_path`` to the store's images and write its columns as typed fields (see ``Columns`` for
    ``key``, ``rename``, ``clash_prefix``, ``skip``; ``root``: file names and relative paths are looked up
    under this indexed folder). Raises InvalidQuery for an unreadable file, a file without a key column
    (naming the ``--key`` to give when one looks like file names), or a column that still clashes."""
    columns = Columns(key, rename or {}, clash_prefix, skip)
    rows, header = _read(csv_path)
    joiner, found = _key_column(csv_path, rows, header, columns.key, Joiner(image_keys(store), "", csv_path.parent,
                                                                             root))
    names, renamed = _field_names(csv_path, header, joiner.column, columns)
    kinds = {field_name: infer_kind([row[column] for row in rows]) for column, field_name in names.items()}
    report = SidecarReport(rows=len(rows), key=joiner.column, key_found=found, renamed=renamed)
    source = f"sidecar:{csv_path.name}"
    values: list[dict[str, Any]] = []
    touched: set[int] = set()
    for row in rows:
        value = row[joiner.column].strip()
        match = joiner.find(value)
        if match.candidates:
            report.ambiguous[value] = match.candidates
        elif not match.ids:
            report.unmatched.append(row[joiner.column])
        else:
            report.matched_rows += 1
            touched.update(match.ids)
            fields = {names[column]: text for column, text in row.items() if column in names}
            values.extend(entry for image_id in match.ids for entry in _field_rows(image_id, fields, kinds, source))
    replace_fields(store, source, sorted(touched), list(kinds), values)
    written = {entry["name"] for entry in values}
    report.fields = {name: kind for name, kind in kinds.items() if name in written}
    report.empty = [name for name in kinds if name not in written]
    report.images_updated = len(touched)
    if rows and not report.matched_rows:
        other = guess_key(joiner, rows, [column for column in header if column != joiner.column])
        report.hint = _hint(report, joiner.column, csv_path, other.column if other else None)
    return report


def _hint(report: SidecarReport, join: str, csv_path: Path, other: str | None) -> str:
    """Why no row matched, and what to do (``other``: a column whose values do name indexed images)."""
    if other is not None:
        return f"no value of the key column {join!r} names an indexed image, but those of {other!r} do: --key {other}"
    if report.ambiguous:
        return ("the file names name files in several indexed folders: give paths relative to the CSV's folder, "
                "or the indexed folder to look in (root)")
    return (f"no value of the key column {join!r} names an indexed image: paths are read relative to the CSV's "
            f"folder ({csv_path.parent.resolve()}) or to the given root, file names are matched to indexed files' "
            "names; check that the folder is indexed, or name the key column (--key COLUMN)")


def _read(csv_path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """(rows, header), names and values stripped of surrounding blanks. Raises InvalidQuery."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = [name.strip() for name in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidQuery(f"cannot read metadata file {csv_path}: {exc}") from exc
    return [{key.strip(): (value or "") for key, value in row.items() if key} for row in rows], header


def _key_column(csv_path: Path, rows: list[dict[str, str]], header: list[str], key: str | None,
                joiner: Joiner) -> tuple[Joiner, bool]:
    """(the joiner reading the key column, whether it was found by its values). The key is ``key``, else
    the first of ``JOIN_COLUMNS`` present, else the column whose values name indexed images. Raises
    InvalidQuery, suggesting ``--key COLUMN`` exactly when a column looks like file names."""
    if key is not None and key not in header:
        raise InvalidQuery(f"{csv_path} has no column {key!r}; its columns: {', '.join(header)}")
    named = key or next((name for name in JOIN_COLUMNS if name in header), None)
    if named is not None:
        return joiner.with_column(named), False
    found = guess_key(joiner, rows, header)
    if found is not None:
        return found, True
    likely = _looks_like_files(rows, header)
    advice = (f"if its column {likely!r} names the images, index their folder first, then give --key {likely}"
              if likely else f"name the column that holds the images' paths or file names: --key COLUMN "
              f"(one of {', '.join(header)})")
    raise InvalidQuery(f"no column of {csv_path} names an indexed image (by path, file name or SOP instance UID); "
                       f"{advice}")


def _looks_like_files(rows: list[dict[str, str]], header: list[str]) -> str | None:
    """The column whose values most often look like image files (an image suffix or a '/'), or None."""
    def files(column: str) -> int:
        return sum(1 for row in rows[:200] if (text := row.get(column, "").strip().lower())
                   and (text.endswith(IMAGE_SUFFIXES) or "/" in text))
    counts = {column: files(column) for column in header}
    best = max(counts, key=lambda column: counts[column], default=None)
    return best if best is not None and counts[best] else None


def _field_names(csv_path: Path, header: list[str], join: str,
                 columns: Columns) -> tuple[dict[str, str], dict[str, str]]:
    """(CSV column -> field name for every column but the key and the skipped ones, the columns renamed
    because they clash with built-in metadata). Raises InvalidQuery."""
    unknown = sorted((set(columns.skip) | set(columns.rename)) - set(header))
    if unknown:
        raise InvalidQuery(f"{csv_path} has no column {', '.join(map(repr, unknown))}; its columns: "
                           f"{', '.join(header)}")
    prefix = CLASH_PREFIX if columns.clash_prefix is None else columns.clash_prefix
    names, renamed = {}, {}
    for column in header:
        if column and column != join and column not in columns.skip:
            name = columns.rename.get(column, column)
            if name in RESERVED and prefix:
                name = renamed[column] = f"{prefix}{name}"
            names[column] = name
    clashing = sorted(column for column, name in names.items() if name in RESERVED)
    if clashing:
        rename = " ".join(f"--rename {column}={prefix or CLASH_PREFIX}{names[column]}" for column in clashing)
        raise InvalidQuery(f"{csv_path}: columns {', '.join(clashing)} clash with built-in metadata; import them "
                           f"under other names ({rename}) or skip them (--skip NAME)")
    doubled = sorted({name for name in names.values() if list(names.values()).count(name) > 1})
    if doubled:
        fixes = " ".join(f"--rename {column}=NEW" for column, name in names.items() if name in doubled)
        raise InvalidQuery(f"{csv_path}: two columns would both be named {', '.join(doubled)}: {fixes}")
    return names, renamed


def infer_kind(values: list[str]) -> str:
    """``number``, ``bool``, ``date`` or ``text``: the narrowest type all non-empty values fit."""
    present = [value.strip() for value in values if value.strip()]
    for kind in ("number", "bool", "date"):
        if present and all(parse_value(value, kind) is not None for value in present):
            return kind
    return "text"


def parse_value(value: str, kind: str) -> Any:
    """``value`` as ``kind`` (float, bool, date, str), or None when it does not parse."""
    value = value.strip()
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return None
    if kind == "bool":
        return {"true": True, "yes": True, "false": False, "no": False}.get(value.lower())
    if kind == "date":
        for layout in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return dt.datetime.strptime(value, layout).date()
            except ValueError:
                continue
        return None
    return value.replace("\x00", "")


def _field_rows(image_id: int, row: dict[str, str], kinds: dict[str, str], source: str) -> list[dict[str, Any]]:
    """The field rows of one image: ``row`` holds field name -> text."""
    out = []
    for name, kind in kinds.items():
        value = parse_value(row.get(name, ""), kind)
        if value is None or value == "":
            continue
        entry: dict[str, Any] = {"image_id": image_id, "name": name, "kind": kind, "source": source,
                                 "number": None, "text": None, "date": None}
        if kind in ("number", "bool"):
            entry["number"] = float(value)
        elif kind == "date":
            entry["date"] = value
        else:
            entry["text"] = value
        out.append(entry)
    return out
