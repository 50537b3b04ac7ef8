"""Exports of a series or study cohort (``medsearch.cohorts.units``): one row per unit, with all its image
ids; ``uids`` gives the unit's DICOM UIDs (study, and series for a series cohort); ``links`` a folder per
unit (``RANK_UID``) holding a link (or copy) of each of its images (``ID_FILENAME``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.cohorts.rows import member_rows, place
from medsearch.errors import InvalidQuery

if TYPE_CHECKING:
    from medsearch.context import Context

UNIT_COLUMNS = ("rank", "unit", "key", "score", "probability", "size", "image_id", "path", "study_instance_uid",
                "modality", "study_date", "description", "ids", "matched")
"""A unit row; in CSV ``ids`` and ``matched`` (the ids that passed the criteria) are space-separated."""


def unit_table(ctx: Context, cohort: dict[str, Any], fmt: str, columns: Sequence[str]) -> tuple[list, tuple]:
    """(rows, header) of a unit cohort for csv, jsonl or uids; ``columns`` are the representative image's
    metadata columns or fields. Raises InvalidQuery for an unknown column."""
    members, kind = cohort["members"], cohort["unit"]
    if fmt == "uids":
        header = ("study_instance_uid", "series_instance_uid") if kind == "series" else ("study_instance_uid",)
        return [{"study_instance_uid": m["study_instance_uid"], "series_instance_uid": m["key"]}
                for m in members], header
    wanted = tuple(c for c in columns if c not in UNIT_COLUMNS)
    extra = {row["id"]: row for row in member_rows(ctx, [{"id": m["image_id"]} for m in members], wanted)}
    rows = []
    for m in members:
        row = {name: m[name] for name in UNIT_COLUMNS} | {c: extra[m["image_id"]][c] for c in wanted}
        if fmt == "csv":
            row["ids"], row["matched"] = " ".join(map(str, m["ids"])), " ".join(map(str, m["matched"]))
        rows.append(row)
    return rows, UNIT_COLUMNS + wanted


def unit_links(members: list[dict[str, Any]], folder: Path, copy: bool) -> int:
    """A folder per unit, ``RANK_UID``, with a symlink (or copy) of each of its images named
    ``ID_FILENAME``. Returns how many units. Raises InvalidQuery when ``folder`` is not empty."""
    if folder.exists() and any(folder.iterdir()):
        raise InvalidQuery(f"{folder} exists and is not empty; choose a new folder for the links")
    for member in members:
        unit_folder = folder / f"{member['rank']:05d}_{member['key']}"
        unit_folder.mkdir(parents=True, exist_ok=True)
        for image_id in member["ids"]:
            source = Path(member["paths"][image_id])
            place(source, unit_folder / f"{image_id}_{source.name}", copy)
    return len(members)
