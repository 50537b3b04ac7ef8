"""A cohort's members as table rows with chosen columns, and the one way a member's file is placed in an
export folder (a symlink or a copy); shared by the image and the series/study exports."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medsearch.query.ranking import group_column
from medsearch.storage import queries
from medsearch.storage.models import METADATA_COLUMNS

if TYPE_CHECKING:
    from medsearch.context import Context


def member_rows(ctx: Context, members: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
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


def place(source: Path, target: Path, copy: bool) -> None:
    """A symlink at ``target`` to ``source``, or a copy of it."""
    if copy:
        shutil.copy2(source, target)
    else:
        target.symlink_to(source)
