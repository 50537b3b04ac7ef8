"""The rows indexing compares with the disk and the rows sidecar imports write, as functions of a
``Store`` (rows, not sessions): ``medsearch.indexer.plan`` and ``medsearch.indexer.sidecar`` call these."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from medsearch.storage.chunking import chunks
from medsearch.storage.models import Failure, Image, ImageField
from medsearch.storage.pixel_records import stale_paths
from medsearch.storage.store import Store
from sqlalchemy import delete, insert, select


@dataclass
class KnownFiles:
    """What the store knows of files: ``stored`` {path: (size, mtime_ns, content hash)}, ``failed``
    {path: (size, mtime_ns)} and ``stale`` (paths whose pixels must be made again)."""

    stored: dict[str, tuple[int, int, str]]
    failed: dict[str, tuple[int | None, int | None]]
    stale: set[str]


def known_files(store: Store, version: str, key: str | None) -> KnownFiles:
    """The indexed and failed files, in one read transaction; ``stale``: the paths of another preprocessing
    ``version`` or, with a ``key``, read with other VOI options (``medsearch.storage.pixel_records``); none without."""
    with store.read_session() as session, session.begin():
        stored = {p: (s, m, h) for p, s, m, h in session.execute(
            select(Image.path, Image.size, Image.mtime_ns, Image.content_hash).distinct())}
        failed = {p: (s, m) for p, s, m in session.execute(select(Failure.path, Failure.size, Failure.mtime_ns))}
        stale = set(session.scalars(stale_paths(version, key))) if key is not None else set()
    return KnownFiles(stored, failed, stale)


def image_keys(store: Store) -> list[tuple[int, str, str | None]]:
    """(id, path, SOP instance UID or None) of every image: what a sidecar row can be joined on."""
    with store.read_session() as session:
        return [(i, p, u) for i, p, u in session.execute(select(Image.id, Image.path, Image.sop_instance_uid))]


def replace_fields(store: Store, source: str, image_ids: Collection[int], names: Sequence[str],
                   values: Sequence[dict[str, Any]]) -> None:
    """In one write transaction: drop the fields ``source`` set before, drop fields ``names`` of
    ``image_ids`` (any source), and insert ``values`` (``ImageField`` rows as dicts). The id list is bound
    ``chunking.CHUNK_SIZE`` at a time, so any number of images can be updated."""
    with store.write_session() as session:
        session.execute(delete(ImageField).where(ImageField.source == source))
        if values:
            for chunk in chunks(image_ids):
                session.execute(delete(ImageField).where(ImageField.image_id.in_(chunk), ImageField.name.in_(names)))
            session.execute(insert(ImageField), list(values))
