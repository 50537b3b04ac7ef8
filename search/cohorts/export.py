"""Cohort exports: CSV, JSON Lines, DICOM UIDs, or a folder of links (or copies) of the member files, each
with the run's manifest written alongside (``PATH.manifest.json``; ``manifest.json`` inside a folder)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.cohorts import show
from medsearch.cohorts.rows import member_rows, place
from medsearch.cohorts.unit_export import unit_links, unit_table
from medsearch.errors import InvalidQuery

if TYPE_CHECKING:
    from medsearch.context import Context

FORMATS = ("csv", "jsonl", "uids", "links")
UID_COLUMNS = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")
BASE_COLUMNS = ("rank", "id", "path", "score", "probability")
DISCORDANCE_COLUMNS = ("report", "disagrees")


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
        rows, skipped = (unit_links if units else _links)(members, output, copy), 0
        manifest_path = output / "manifest.json"
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        table, header = unit_table(ctx, cohort, fmt, columns) if units else _image_table(ctx, members, fmt, columns)
        if fmt != "uids" and "discordance" in cohort:  # each member's report label and direction
            table = [{**row, **{c: m.get(c) for c in DISCORDANCE_COLUMNS}} for row, m in zip(table, members,
                                                                                           strict=True)]
            header = (*header, *DISCORDANCE_COLUMNS)
        _write_table(table, output, fmt, header)
        rows, skipped = len(table), len(members) - len(table)
        manifest_path = output.with_name(output.name + ".manifest.json")
    manifest_path.write_text(json.dumps(cohort, indent=2, default=str))
    return {"format": fmt, "output": str(output), "manifest": str(manifest_path), "rows": rows, "skipped": skipped}


def _image_table(ctx: Context, members: list[dict[str, Any]], fmt: str,
                 columns: Sequence[str]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """(rows, header) of an image cohort for csv, jsonl or uids (members without a SOP UID left out)."""
    wanted = UID_COLUMNS if fmt == "uids" else tuple(c for c in columns if c not in BASE_COLUMNS)
    table = member_rows(ctx, members, wanted)
    if fmt == "uids":
        return [{c: row[c] for c in UID_COLUMNS} for row in table if row["sop_instance_uid"] is not None], UID_COLUMNS
    return table, BASE_COLUMNS + wanted


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
