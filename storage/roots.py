"""Removing an indexed folder (a root) from the store: its images (SQL rows and FAISS vectors, through
``write_batch``: tombstones, the in-memory index in step), its failure records and its root row.
Kill-safe: the images go ``REMOVE_BATCH`` files per committed batch (a large folder never holds the write
lock for long), the records after; a run killed part-way leaves the root listed with fewer images under
it, and running the removal again finishes it."""

from __future__ import annotations

from dataclasses import dataclass

from medsearch.storage.models import Failure, Image, Root
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, write_batch
from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.orm import InstrumentedAttribute

REMOVE_BATCH = 500
"""Files whose images leave the store in one transaction."""


@dataclass
class RootRemoval:
    """What a removal did: the roots dropped (the folder and any indexed folders inside it), the files
    and images removed, the failure records forgotten."""

    roots: list[str]
    files: int
    images: int
    failures: int


def _under(column: InstrumentedAttribute[str], folder: str) -> ColumnElement[bool]:
    """``column`` is ``folder`` or a path inside it (``LIKE`` wildcards in ``folder`` escaped)."""
    return or_(column == folder, column.startswith(folder.rstrip("/") + "/", autoescape=True))


def remove_root(store: Store, folder: str) -> RootRemoval:
    """Remove every image, failure record and root at or under ``folder`` (an indexed root, resolved).
    The caller checks that ``folder`` is a root and not inside another one."""
    with store.read_session() as session:
        paths = list(session.scalars(select(Image.path).where(_under(Image.path, folder)).distinct()))
        images = len(list(session.scalars(select(Image.id).where(_under(Image.path, folder)))))
    for start in range(0, len(paths), REMOVE_BATCH):
        write_batch(store, Batch(remove_paths=paths[start : start + REMOVE_BATCH]))
    with store.write_session() as session:
        roots = list(session.scalars(select(Root.path).where(_under(Root.path, folder))))
        failures = len(list(session.scalars(select(Failure.path).where(_under(Failure.path, folder)))))
        session.execute(delete(Failure).where(_under(Failure.path, folder)))
        session.execute(delete(Root).where(_under(Root.path, folder)))
    return RootRemoval(sorted(roots), len(paths), images, failures)
