"""Which indexed images a sidecar row names.

The key column holds a SOP instance UID (a column named ``sop_instance_uid``), a path, or a file name.
A value with a ``/`` (or any value of a ``path`` column) is a path: absolute, or relative to the CSV's
folder, or to ``root`` when one is given. A bare file name matches the indexed files of that name; when
files in several folders share it, the row is ambiguous and matches nothing (``root`` narrows the search
to one indexed folder, or the row can give a path instead)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medsearch.storage.file_records import image_keys
from medsearch.storage.store import Store

UID_COLUMN = "sop_instance_uid"
SAMPLE_ROWS = 500
"""How many rows of each column ``guess_key`` tries: enough to tell the key from a label column."""


@dataclass
class Found:
    """The images one key names: ``ids``; or none, with the ``candidates`` (paths) that made it ambiguous."""

    ids: list[int] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)


class Joiner:
    """Looks up key values of column ``column`` among the store's images."""

    def __init__(self, images: Iterable[tuple[int, str, str | None]], column: str, base: Path,
                 root: Path | None = None) -> None:
        """``images``: (id, path, SOP instance UID) rows (``medsearch.storage.file_records.image_keys``)."""
        self.column, self.base = column, base
        self.uids = column == UID_COLUMN
        self.root = root.expanduser().resolve() if root is not None else None
        self.by_path: dict[str, list[int]] = {}
        self.by_name: dict[str, dict[str, list[int]]] = {}
        self.by_uid: dict[str, list[int]] = {}
        for image_id, path, uid in images:
            self.by_path.setdefault(path, []).append(image_id)
            if self.root is None or Path(path).is_relative_to(self.root):
                self.by_name.setdefault(Path(path).name, {}).setdefault(path, []).append(image_id)
            if uid:
                self.by_uid.setdefault(uid, []).append(image_id)

    def find(self, value: str) -> Found:
        """The images ``value`` names (see the module's rules)."""
        if self.uids:
            return Found(self.by_uid.get(value, []))
        if self.column == "path" or "/" in value:
            return Found(self._by_path(value))
        paths = self.by_name.get(value, {})
        if len(paths) > 1:
            return Found(candidates=sorted(paths))
        return Found(next(iter(paths.values()), []))

    def with_column(self, column: str, uids: bool = False) -> Joiner:
        """The same look-up tables, reading values of ``column`` (as SOP instance UIDs with ``uids``)."""
        other = copy.copy(self)
        other.column, other.uids = column, uids or column == UID_COLUMN
        return other

    def _by_path(self, value: str) -> list[int]:
        if value in self.by_path:
            return self.by_path[value]
        for folder in (self.root, self.base):
            if folder is not None and (ids := self.by_path.get(str((folder / value).resolve()))):
                return ids
        return []


def guess_key(joiner: Joiner, rows: Sequence[dict[str, str]], header: Sequence[str]) -> Joiner | None:
    """A joiner reading the column whose values name the most indexed images (by path or file name, or
    as SOP instance UIDs) among its first ``SAMPLE_ROWS`` rows; None when no column's values name any."""
    best: tuple[Joiner | None, int] = (None, 0)
    sample = rows[:SAMPLE_ROWS]
    for column in header:
        for reader in (joiner.with_column(column), joiner.with_column(column, uids=True)):
            hits = sum(1 for row in sample if _names_an_image(reader, (row.get(column) or "").strip()))
            if hits > best[1]:
                best = (reader, hits)
    return best[0]


def _names_an_image(joiner: Joiner, value: str) -> bool:
    found = joiner.find(value) if value else Found()
    return bool(found.ids or found.candidates)


def join_keys(store: Store, column: str, values: list[str], base: Path, root: Path | None = None) -> list[Found]:
    """What each key value of ``column`` names in ``store``, by the rules above: the same join
    ``import-metadata`` uses, for readers of other CSVs (``evaluate --truth``)."""
    joiner = Joiner(image_keys(store), column, base, root)
    return [joiner.find(value.strip()) for value in values]
