"""Every change to the images goes through ``write_batch``: one transaction that bumps the generation,
so readers see a batch whole or not at all, and a crash keeps every batch committed before it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from medsearch.storage import vector_codec
from medsearch.storage.models import METADATA_COLUMNS, Deletion, Failure, Image, ImageField, ImageVector, utcnow
from medsearch.storage.store import Store
from medsearch.storage.thumbnails import save_thumbnails
from medsearch.storage.units import keys_of_metadata, keys_of_paths, refresh
from sqlalchemy import delete, insert, select, update

STORED_KEYS = frozenset(METADATA_COLUMNS) | {"identity", "read_options", "preprocessing_version", "accession_key"}


@dataclass
class NewImage:
    """One embedded frame of a file. ``embedding``: (dim,) float32 unit vector; ``thumbnail``: PNG bytes."""

    path: str
    frame_number: int
    size: int
    mtime_ns: int
    content_hash: str
    embedding: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = None


@dataclass
class FileStat:
    path: str
    size: int
    mtime_ns: int


@dataclass
class Batch:
    """A set of changes committed together. Paths in ``replace_paths`` lose their old rows (their new
    ones are in ``images``); ``moves`` are (old path, new stat) with the vectors kept."""

    images: list[NewImage] = field(default_factory=list)
    replace_paths: set[str] = field(default_factory=set)
    remove_paths: list[str] = field(default_factory=list)
    moves: list[tuple[str, FileStat]] = field(default_factory=list)
    touches: list[FileStat] = field(default_factory=list)
    failures: list[tuple[FileStat, str]] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.images or self.replace_paths or self.remove_paths or self.moves or self.touches
                    or self.failures)


def write_batch(store: Store, batch: Batch) -> int:
    """Commit ``batch`` in one transaction and apply it to the store's in-memory index.
    Returns the new generation."""
    blobs = [vector_codec.encode(image.embedding) for image in batch.images]
    with store.write_session() as session:
        generation = store.bump_generation(session)
        carried = _sidecar_fields(session, list(batch.replace_paths))
        gone_paths = list(batch.replace_paths) + list(batch.remove_paths)
        touched = keys_of_paths(session, gone_paths)
        removed = _delete_paths(session, gone_paths, generation)
        for old_path, stat in batch.moves:
            session.execute(update(Image).where(Image.path == old_path).values(
                path=stat.path, size=stat.size, mtime_ns=stat.mtime_ns))
        for stat in batch.touches:
            session.execute(update(Image).where(Image.path == stat.path).values(
                size=stat.size, mtime_ns=stat.mtime_ns))
        ids = _insert_images(session, batch.images, blobs, generation)
        _carry_fields(session, carried, batch.images, ids)
        refresh(session, touched | keys_of_metadata(image.metadata for image in batch.images), generation)
        save_thumbnails(session, ids.tolist(), [image.thumbnail for image in batch.images])
        done = {image.path for image in batch.images} | {stat.path for _old, stat in batch.moves}
        _record_failures(session, batch.failures, done)
    stored = vector_codec.decode_many(blobs)
    store.vectors.apply(generation, (ids, stored), removed)  # as stored, so every process ranks alike
    return generation


def _delete_paths(session: Any, paths: list[str], generation: int) -> np.ndarray:
    removed: list[int] = []
    for start in range(0, len(paths), 500):
        chunk = paths[start : start + 500]
        ids = list(session.scalars(select(Image.id).where(Image.path.in_(chunk))))
        if ids:
            session.execute(delete(Image).where(Image.id.in_(ids)))
            session.execute(insert(Deletion), [{"image_id": i, "generation": generation} for i in ids])
            removed.extend(ids)
    return np.asarray(removed, dtype=np.int64)


def _sidecar_fields(session: Any, paths: list[str]) -> list[tuple[str, int, dict[str, Any]]]:
    """Sidecar values of files about to be replaced, so the new rows keep them."""
    if not paths:
        return []
    rows = session.execute(
        select(Image.path, Image.frame_number, ImageField)
        .join(ImageField, ImageField.image_id == Image.id)
        .where(Image.path.in_(paths), ImageField.source.like("sidecar:%"))
    ).all()
    keep = ("name", "kind", "number", "text", "date", "source")
    return [(path, frame, {key: getattr(field_row, key) for key in keep}) for path, frame, field_row in rows]


def _carry_fields(session: Any, carried: list[tuple[str, int, dict[str, Any]]], images: list[NewImage],
                  ids: np.ndarray) -> None:
    new_ids = {(image.path, image.frame_number): int(i) for image, i in zip(images, ids, strict=True)}
    values = [{**values, "image_id": new_ids[(path, frame)]} for path, frame, values in carried
              if (path, frame) in new_ids]
    if values:
        session.execute(insert(ImageField), values)


def _insert_images(session: Any, images: list[NewImage], blobs: list[bytes], generation: int) -> np.ndarray:
    """Insert the rows of ``images`` and their stored vectors ``blobs``; returns their new ids."""
    if not images:
        return np.empty(0, dtype=np.int64)
    now = utcnow()
    rows = [
        {
            **{key: value for key, value in image.metadata.items() if key in STORED_KEYS},
            "path": image.path,
            "frame_number": image.frame_number,
            "size": image.size,
            "mtime_ns": image.mtime_ns,
            "content_hash": image.content_hash,
            "generation": generation,
            "indexed_at": now,
        }
        for image in images
    ]
    statement = insert(Image).returning(Image.id, sort_by_parameter_order=True)
    ids = np.fromiter(session.scalars(statement, rows), dtype=np.int64)
    session.execute(insert(ImageVector), [{"id": int(i), "embedding": blob}
                                          for i, blob in zip(ids, blobs, strict=True)])
    return ids


def _record_failures(session: Any, failures: list[tuple[FileStat, str]], done: set[str]) -> None:
    paths = sorted(done | {stat.path for stat, _reason in failures})
    for start in range(0, len(paths), 500):
        session.execute(delete(Failure).where(Failure.path.in_(paths[start : start + 500])))
    if failures:
        session.execute(insert(Failure), [
            {"path": stat.path, "reason": clean_reason(reason), "size": stat.size, "mtime_ns": stat.mtime_ns,
             "seen_at": utcnow()}
            for stat, reason in failures
        ])


def clean_reason(reason: str, limit: int = 2000) -> str:
    """A failure reason fit for any database: no NUL bytes or other control characters, bounded length."""
    printable = "".join(ch if ch.isprintable() else "?" for ch in reason)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def record_failures(store: Store, failures: list[tuple[FileStat, str]]) -> None:
    """Record files that cannot be indexed (replacing older records of the same paths); no generation."""
    with store.write_session() as session:
        _record_failures(session, failures, set())


def forget_failures(store: Store, paths: list[str]) -> None:
    """Drop failure records of files that no longer exist."""
    with store.write_session() as session:
        for start in range(0, len(paths), 500):
            session.execute(delete(Failure).where(Failure.path.in_(paths[start : start + 500])))
