"""Sidecar metadata: a CSV whose rows are joined to images by path, file name or SOP instance UID
(``medsearch.indexer.sidecar_join``), and whose other columns become typed, filterable fields
(``medsearch.storage.models.ImageField``). The key column is found by name (``JOIN_COLUMNS``) or named by the
user; columns that clash with built-in metadata can be renamed, prefixed or skipped.

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
from medsearch.indexer.sidecar_join import Joiner
from medsearch.storage.file_records import image_keys, replace_fields
from medsearch.storage.models import METADATA_COLUMNS
from medsearch.storage.store import Store

JOIN_COLUMNS = ("path", "file", "filename", "file_name", "sop_instance_uid")
RESERVED = set(METADATA_COLUMNS) | {"id", "path", "indexed_at", "score", "probability"}


@dataclass
class SidecarReport:
    """What an import did: rows matched to images, the keys of rows that matched none, the keys that name
    same-named files in several folders (with those files), the fields written and their types, the
    columns that had no value for any matched image (not imported), and a hint when nothing matched."""

    rows: int = 0
    matched_rows: int = 0
    images_updated: int = 0
    unmatched: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)
    hint: str | None = None


@dataclass(frozen=True)
class Columns:
    """How the CSV's columns are read: the ``key`` column (None: the first of ``JOIN_COLUMNS`` present),
    ``rename`` (CSV name -> field name), ``clash_prefix`` (put before any other name that clashes with
    built-in metadata), ``skip`` (columns not imported)."""

    key: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict)
    clash_prefix: str | None = None
    skip: Sequence[str] = ()


def import_sidecar(store: Store, csv_path: Path, *, key: str | None = None, rename: Mapping[str, str] | None = None,
                   clash_prefix: str | None = None, skip: Sequence[str] = (),
                   root: Path | None = None) -> SidecarReport:
    """Join ``csv_path`` to the store's images and write its columns as typed fields (see ``Columns`` for
    ``key``, ``rename``, ``clash_prefix``, ``skip``; ``root``: file names and relative paths are looked up
    under this indexed folder). Raises InvalidQuery for a file without a key column, or with a column
    that still clashes with a built-in one."""
    rows, join, names = _read(csv_path, Columns(key, rename or {}, clash_prefix, skip))
    kinds = {field_name: infer_kind([row[column] for row in rows]) for column, field_name in names.items()}
    report = SidecarReport(rows=len(rows))
    source = f"sidecar:{csv_path.name}"
    joiner = Joiner(image_keys(store), join, csv_path.parent, root)
    values: list[dict[str, Any]] = []
    touched: set[int] = set()
    for row in rows:
        value = row[join].strip()
        found = joiner.find(value)
        if found.candidates:
            report.ambiguous[value] = found.candidates
        elif not found.ids:
            report.unmatched.append(row[join])
        else:
            report.matched_rows += 1
            touched.update(found.ids)
            fields = {names[column]: text for column, text in row.items() if column in names}
            values.extend(entry for image_id in found.ids for entry in _field_rows(image_id, fields, kinds, source))
    replace_fields(store, source, sorted(touched), list(kinds), values)
    written = {entry["name"] for entry in values}
    report.fields = {name: kind for name, kind in kinds.items() if name in written}
    report.empty = [name for name in kinds if name not in written]
    report.images_updated = len(touched)
    report.hint = _hint(report, join, csv_path) if rows and not report.matched_rows else None
    return report


def _hint(report: SidecarReport, join: str, csv_path: Path) -> str:
    """Why no row matched, and what to do."""
    if report.ambiguous:
        return ("the file names name files in several indexed folders: give paths relative to the CSV's folder, "
                "or the indexed folder to look in (root)")
    return (f"no value of the key column {join!r} names an indexed image: paths are read relative to the CSV's "
            f"folder ({csv_path.parent.resolve()}) or to the given root, file names are matched to indexed files' "
            "names; check that the folder is indexed, or name the key column (key)")


def _read(csv_path: Path, columns: Columns) -> tuple[list[dict[str, str]], str, dict[str, str]]:
    """(rows, key column, CSV column -> field name of the columns imported)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = [name.strip() for name in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidQuery(f"cannot read metadata file {csv_path}: {exc}") from exc
    join = columns.key or next((name for name in JOIN_COLUMNS if name in header), None)
    if join is None:
        raise InvalidQuery(f"{csv_path} needs one of the columns {', '.join(JOIN_COLUMNS)} to match images, "
                           f"or the name of its key column (key); its columns: {', '.join(header)}")
    if join not in header:
        raise InvalidQuery(f"{csv_path} has no column {join!r}; its columns: {', '.join(header)}")
    rows = [{key.strip(): (value or "") for key, value in row.items() if key} for row in rows]
    return rows, join, _field_names(csv_path, header, join, columns)


def _field_names(csv_path: Path, header: list[str], join: str, columns: Columns) -> dict[str, str]:
    """CSV column -> field name, for every column but the key and the skipped ones."""
    unknown = sorted((set(columns.skip) | set(columns.rename)) - set(header))
    if unknown:
        raise InvalidQuery(f"{csv_path} has no column {', '.join(map(repr, unknown))}; its columns: "
                           f"{', '.join(header)}")
    names = {}
    for column in header:
        if column and column != join and column not in columns.skip:
            name = columns.rename.get(column, column)
            names[column] = f"{columns.clash_prefix}{name}" if columns.clash_prefix and name in RESERVED else name
    clashing = sorted(column for column, name in names.items() if name in RESERVED)
    if clashing:
        raise InvalidQuery(f"{csv_path}: columns {clashing} clash with built-in metadata; rename them "
                           "(--rename OLD=NEW), prefix them (--clash-prefix PREFIX) or skip them (--skip NAME)")
    doubled = sorted({name for name in names.values() if list(names.values()).count(name) > 1})
    if doubled:
        raise InvalidQuery(f"{csv_path}: two columns would both be named {', '.join(doubled)}")
    return names


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
