"""Sidecar metadata: a CSV whose rows are joined to images by path, file name or SOP instance UID, and
whose other columns become typed, filterable fields (``storage.models.ImageField``).

Column types are inferred from all of a column's non-empty values: numbers (0/1 label columns stay
numbers), booleans (true/false, yes/no), dates (YYYY-MM-DD or YYYYMMDD), else text. Re-importing a file
replaces the values it set before.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from storage.errors import InvalidQuery
from storage.models import METADATA_COLUMNS, Image, ImageField
from storage.store import Store

JOIN_COLUMNS = ("path", "file", "filename", "file_name", "sop_instance_uid")
RESERVED = set(METADATA_COLUMNS) | {"id", "path", "indexed_at", "score", "probability"}


@dataclass
class SidecarReport:
    """What an import did: rows matched to images, the keys of rows that matched none, field types."""

    rows: int = 0
    matched_rows: int = 0
    images_updated: int = 0
    unmatched: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def import_sidecar(store: Store, csv_path: Path) -> SidecarReport:
    """Join ``csv_path`` to the store's images and write its columns as typed fields. Raises
    InvalidQuery for a file without a join column or with a column named like a built-in one."""
    rows, join, columns = _read(csv_path)
    kinds = {name: infer_kind([row[name] for row in rows]) for name in columns}
    report = SidecarReport(rows=len(rows), fields=kinds)
    source = f"sidecar:{csv_path.name}"
    with store.session() as session:
        lookup = _lookup(session, join, csv_path.parent)
        session.execute(delete(ImageField).where(ImageField.source == source))
        values: list[dict[str, Any]] = []
        touched: set[int] = set()
        for row in rows:
            ids = lookup(row[join].strip())
            if not ids:
                report.unmatched.append(row[join])
                continue
            report.matched_rows += 1
            for image_id in ids:
                touched.add(image_id)
                values.extend(_field_rows(image_id, row, kinds, source))
        if values:
            session.execute(delete(ImageField).where(ImageField.image_id.in_(touched),
                                                     ImageField.name.in_(list(kinds))))
            session.execute(insert(ImageField), values)
    report.images_updated = len(touched)
    return report


def _read(csv_path: Path) -> tuple[list[dict[str, str]], str, list[str]]:
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = [name.strip() for name in reader.fieldnames or []]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidQuery(f"cannot read metadata file {csv_path}: {exc}") from exc
    join = next((name for name in JOIN_COLUMNS if name in header), None)
    if join is None:
        raise InvalidQuery(f"{csv_path} needs one of the columns {', '.join(JOIN_COLUMNS)} to match images")
    clashing = sorted(set(header) & RESERVED - {join})
    if clashing:
        raise InvalidQuery(f"{csv_path}: columns {clashing} clash with built-in metadata; rename them")
    rows = [{key.strip(): (value or "") for key, value in row.items() if key} for row in rows]
    return rows, join, [name for name in header if name != join and name]


def _lookup(session: Any, join: str, base: Path) -> Any:
    """A function from a join value to the matching image ids."""
    pairs = session.execute(select(Image.id, Image.path, Image.sop_instance_uid)).all()
    index: dict[str, list[int]] = {}
    for image_id, path, uid in pairs:
        if join == "path":
            key = path
        elif join == "sop_instance_uid":
            key = uid or ""
        else:
            key = Path(path).name
        index.setdefault(key, []).append(image_id)

    def find(value: str) -> list[int]:
        if join == "path" and value not in index:
            value = str((base / value).resolve())
        return index.get(value, [])

    return find


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
