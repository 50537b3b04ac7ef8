"""Cohort exports: CSV, JSON Lines, DICOM UIDs, or a folder of links (or copies) of the member files, each
with the run's manifest written alongside (``PATH.manifest.json``; ``manifest.json`` inside a folder)."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.cohorts import show
from medsearch.errors import InvalidQuery
from medsearch.query.ranking import group_column
from medsearch.storage import queries
from medsearch.storage.models import METADATA_COLUMNS

if TYPE_CHECKING:
    from medsearch.context import Context

FORMATS = ("csv", "jsonl", "uids", "links")
UID_COLUMNS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")
BASE_COLUMNS = ("rank", "id", "path", "score", "probability")


def export(ctx: Context, name: str, fmt: str, output: str | Path, columns: Sequence[str] = (),
           copy: bool = False, run: int | None = None) -> dict[str, Any]:
    """Write cohort ``name`` (latest run, or ``run``) to ``output``; a series/study cohort one row per unit
    (``medsearch.cohorts.unit_export``). ``columns``: metadata columns or sidecar/label fields added to
    csv/jsonl rows (a unit's: its representative image's). Returns {format, output, manifest, rows, skipped}.
    Raises InvalidQuery (format, existing links folder), NotFound."""
    if fmt not in FORMATS:
        raise InvalidQuery(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    cohort = show(ctx, name, run)
    output = Path(output).expanduser()
    members = cohort["members"]
    units = cohort.get("unit", "image") != "image"
    if fmt == "links":
        rows, skipped = (_unit_links if units else _links)(members, output, copy), 0
        manifest_path = output / "manifest.json"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        table, header = _unit_table(ctx, cohort, fmt, columns) if units else _image_table(ctx, members, fmt, columns)
        _write_table(table, output, fmt, header)
        rows, skipped = len(table), len(members) - len(table)
        manifest_path = output.with_name(output.name + ".manifest.json")
    manifest_path.write_text(json.dumps(cohort, indent=2, default=str))
    return {"format": fmt, "output": str(output), "manifest": str(manifest_path), "rows": rows, "skipped": skipped}


def _image_table(ctx: Context, members: list[dict[str, Any]], fmt: str,
                 columns: Sequence[str]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """(rows, header) of an image cohort for csv, jsonl or uids (members without a SOP UID left out)."""
    wanted = UID_COLUMNS if fmt == "uids" else tuple(c for c in columns if c not in BASE_COLUMNS)
    table = _rows(ctx, members, wanted)
    if fmt == "uids":
        return [{c: row[c] for c in UID_COLUMNS} for row in table if row["sop_instance_uid"] is not None], UID_COLUMNS
    return table, BASE_COLUMNS + wanted


def _unit_table(ctx: Context, cohort: dict[str, Any], fmt: str, columns: Sequence[str]) -> tuple[list, tuple]:
    from medsearch.cohorts.unit_export import unit_table

    return unit_table(ctx, cohort, fmt, columns)


def _unit_links(members: list[dict[str, Any]], folder: Path, copy: bool) -> int:
    from medsearch.cohorts.unit_export import unit_links

    return unit_links(members, folder, copy)


def _rows(ctx: Context, members: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """Members with ``columns`` added (None where an image has no value): metadata columns as stored,
    sidecar/label fields typed as imported (numbers stay numbers in both CSV and JSON Lines)."""
    ids = [m["id"] for m in members]
    resolved = {column: group_column(ctx.store, column) for column in columns}
    stored = {column: name for column, name in resolved.items() if name in METADATA_COLUMNS or name == "path"}
    typed = queries.fields_by_id(ctx.store, ids, [name for name in resolved.values() if name not in stored.values()])
    values = {column: queries.group_values(ctx.store, ids, name) for column, name in stored.items()}

    def value(member_id: int, column: str) -> Any:
        if column in values:
            return _iso(values[column].get(member_id))
        return typed.get(member_id, {}).get(resolved[column])

    return [{**m, **{c: value(m["id"], c) for c in columns}} for m in members]


def _iso(value: Any) -> Any:
    """Dates as ISO text; other values as they are."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def _write_table(rows: list[dict[str, Any]], output: Path, fmt: str, header: Sequence[str]) -> None:
    with output.open("w", newline="") as handle:
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps(row, default=str) + "\n")
            return
        writer = csv.DictWriter(handle, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _links(members: list[dict[str, Any]], folder: Path, copy: bool) -> int:
    """One symlink (or copy) per member, named ``RANK_ID_FILENAME`` so the order and origin stay visible."""
    if folder.exists() and any(folder.iterdir()):
        raise InvalidQuery(f"{folder} exists and is not empty; choose a new folder for the links")
    folder.mkdir(parents=True, exist_ok=True)
    for member in members:
        source = Path(member["path"])
        place(source, folder / f"{member['rank']:05d}_{member['id']}_{source.name}", copy)
    return len(members)


def place(source: Path, target: Path, copy: bool) -> None:
    """A symlink at ``target`` to ``source``, or a copy of it."""
    if copy:
        shutil.copy2(source, target)
    else:
        target.symlink_to(source)
