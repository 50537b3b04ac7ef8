"""Series and study vectors: the normalised mean of a unit's image vectors, kept in the ``units`` table
in the same transaction as the images (``refresh``, called by ``medsearch.storage.writes.write_batch``), and in an
in-memory FAISS index per kind, caught up by generation like the image index (``store.unit_vectors``,
``medsearch.storage.unit_index``). A kill at any point leaves the table consistent with the images, since
both are one transaction; the in-memory index is rebuilt or replayed from the table on first use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
from medsearch.errors import NotFound
from medsearch.storage import vector_codec
from medsearch.storage.models import Image
from medsearch.storage.store import Store
from medsearch.storage.unit_index import KINDS, UnitKey, missing_units
from medsearch.storage.unit_models import Unit
from sqlalchemy import func, select


def keys_of_metadata(metadata: Iterable[dict[str, Any]]) -> set[UnitKey]:
    """The units that images with this metadata belong to."""
    return {(kind, str(values[column])) for values in metadata for kind, column in KINDS.items()
            if values.get(column)}


def keys_of_paths(session: Any, paths: list[str]) -> set[UnitKey]:
    """The units the stored images of ``paths`` belong to (read before they are deleted)."""
    keys: set[UnitKey] = set()
    for start in range(0, len(paths), 500):
        rows = session.execute(select(Image.series_instance_uid, Image.study_instance_uid)
                               .where(Image.path.in_(paths[start : start + 500]))).all()
        keys |= keys_of_metadata({"series_instance_uid": s, "study_instance_uid": t} for s, t in rows)
    return keys


def refresh(session: Any, keys: set[UnitKey], generation: int) -> None:
    """Recompute the mean vector and summary of each unit in ``keys`` from its images as they are in
    ``session`` now (exact: no running sums to drift), stamped with ``generation``."""
    for kind, uid in sorted(keys):
        column = getattr(Image, KINDS[kind])
        rows = session.execute(select(Image.embedding, Image.study_instance_uid, Image.patient_key, Image.modality,
                                      Image.study_date, Image.series_description).where(column == uid)).all()
        row = session.scalar(select(Unit).where(Unit.kind == kind, Unit.uid == uid))
        if row is None:
            if not rows:
                continue
            row = Unit(kind=kind, uid=uid)
            session.add(row)
        row.size, row.generation = len(rows), generation
        row.embedding = mean_vector([r[0] for r in rows]).tobytes() if rows else None
        if rows:
            _summarise(row, rows)


def _summarise(row: Unit, rows: list[Any]) -> None:
    row.study_instance_uid = rows[0][1]
    row.patient_key = next((r[2] for r in rows if r[2]), None)
    row.modality = ",".join(sorted({r[3] for r in rows if r[3]}))[:64] or None
    row.study_date = min((r[4] for r in rows if r[4]), default=None)
    row.description = next((r[5] for r in rows if r[5]), None)


def mean_vector(blobs: list[bytes]) -> np.ndarray:
    """The unit-length (dim,) float32 mean of stored vector blobs (of any stored form)."""
    total = np.sum([vector_codec.decode(blob) for blob in blobs], axis=0, dtype=np.float64)
    norm = float(np.linalg.norm(total))
    return np.asarray(total / norm if norm > 0 else total, dtype=np.float32)


def stale_units(store: Store) -> list[UnitKey]:
    """Units whose stored size or vector differs from their images' (or that are missing): what
    ``medsearch check`` reports. Empty for a consistent store."""
    with store.read_session() as session:
        problems = missing_units(session)
        for row in session.scalars(select(Unit)):
            blobs = list(session.scalars(select(Image.embedding).where(getattr(Image, KINDS[row.kind]) == row.uid)))
            if len(blobs) != row.size:
                problems.add((row.kind, row.uid))
            elif blobs and row.embedding is not None:
                stored = vector_codec.decode(row.embedding)
                if not np.allclose(stored, mean_vector(blobs), atol=1e-5):
                    problems.add((row.kind, row.uid))
    return sorted(problems)


def rebuild_units(store: Store, keys: Iterable[UnitKey]) -> int:
    """Recompute ``keys`` in one transaction that bumps the generation (readers replay them). Returns
    how many. The store must be writable."""
    keys = set(keys)
    if not keys:
        return 0
    with store.write_session() as session:
        refresh(session, keys, store.bump_generation(session))
    return len(keys)


def members(store: Store, kind: str, uids: list[str]) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Each unit's images as (image id, (dim,) float32 vector), by id."""
    column = getattr(Image, KINDS[kind])
    found: dict[str, list[tuple[int, np.ndarray]]] = {uid: [] for uid in uids}
    with store.read_session() as session:
        for start in range(0, len(uids), 200):
            chunk = uids[start : start + 200]
            ordered = select(column, Image.id, Image.embedding).order_by(Image.id)
            rows = session.execute(ordered.where(column.in_(chunk)))
            for uid, image_id, blob in rows:
                found[uid].append((image_id, vector_codec.decode(blob)))
    return found


def units_by_id(store: Store, ids: list[int]) -> dict[int, Unit]:
    with store.read_session() as session:
        return {row.id: row for row in session.scalars(select(Unit).where(Unit.id.in_(ids)))}


def unit_of_image(store: Store, kind: str, image_id: int) -> Unit | None:
    """The unit of ``kind`` that image ``image_id`` belongs to, or None (no such image, or no UID)."""
    column = getattr(Image, KINDS[kind])
    with store.read_session() as session:
        uid = session.scalar(select(column).where(Image.id == image_id))
        return None if uid is None else session.scalar(select(Unit).where(Unit.kind == kind, Unit.uid == uid))


def unit_by_uid(store: Store, kind: str, uid: str) -> Unit | None:
    with store.read_session() as session:
        return session.scalar(select(Unit).where(Unit.kind == kind, Unit.uid == uid, Unit.size > 0))


def units_of_images(store: Store, kind: str, ids: list[int]) -> dict[int, tuple[str, int]]:
    """image id -> (its unit uid of ``kind``, the unit's size), for the images that have one."""
    column = getattr(Image, KINDS[kind])
    found: dict[int, tuple[str, int]] = {}
    with store.read_session() as session:
        for start in range(0, len(ids), 500):
            joined = select(Image.id, column, Unit.size).join(Unit, (Unit.uid == column) & (Unit.kind == kind))
            rows = session.execute(joined.where(Image.id.in_(ids[start : start + 500])))
            found.update({image_id: (uid, size) for image_id, uid, size in rows})
    return found


def ids_without_unit(store: Store, kind: str) -> np.ndarray:
    """Sorted int64 ids of the images that belong to no unit of ``kind`` (no UID in its column: PNG, JPEG
    and other files without DICOM UIDs)."""
    column = getattr(Image, KINDS[kind])
    with store.read_session() as session:
        ids = session.scalars(select(Image.id).where(column.is_(None)).order_by(Image.id))
        return np.fromiter(ids, dtype=np.int64)


def member_ids(store: Store, kind: str, uids: list[str]) -> dict[str, list[int]]:
    """Each unit's image ids, ascending."""
    column = getattr(Image, KINDS[kind])
    found: dict[str, list[int]] = {uid: [] for uid in uids}
    with store.read_session() as session:
        for start in range(0, len(uids), 200):
            for uid, image_id in session.execute(select(column, Image.id).where(column.in_(uids[start : start + 200]))
                                                 .order_by(Image.id)):
                found[uid].append(image_id)
    return found


def unit_ids_of_uids(store: Store, kind: str, uids: set[str]) -> np.ndarray:
    """Sorted int64 unit ids of ``uids``."""
    out: list[int] = []
    ordered = sorted(uids)
    with store.read_session() as session:
        for start in range(0, len(ordered), 500):
            out += session.scalars(select(Unit.id).where(Unit.kind == kind, Unit.uid.in_(ordered[start : start + 500]),
                                                         Unit.size > 0))
    return np.asarray(sorted(out), dtype=np.int64)


def studies_of_patient(store: Store, patient_key: str) -> list[tuple[Unit, int]]:
    """(study, its series count) of one patient key, oldest first (undated last)."""
    with store.read_session() as session:
        studies = list(session.scalars(select(Unit).where(Unit.kind == "study", Unit.patient_key == patient_key,
                                                          Unit.size > 0)))
        counted = select(Unit.study_instance_uid, func.count()).where(
            Unit.kind == "series", Unit.size > 0, Unit.patient_key == patient_key).group_by(Unit.study_instance_uid)
        counts = {uid: number for uid, number in session.execute(counted)}
    studies.sort(key=lambda row: (row.study_date is None, row.study_date or dt.date.min, row.uid))
    return [(row, counts.get(row.uid, 0)) for row in studies]


def patient_of_image(store: Store, image_id: int) -> tuple[bool, str | None]:
    """(whether the image exists, its patient key)."""
    with store.read_session() as session:
        row = session.execute(select(Image.id, Image.patient_key).where(Image.id == image_id)).first()
    return (row is not None, row[1] if row else None)


def series_members(store: Store, image_id: int, limit: int) -> list[tuple[int, str, int]]:
    """(id, stored path, frame number) of the images of ``image_id``'s series (only itself when it has no
    Series Instance UID), at most ``limit`` of them by id, ``image_id`` always among them. Raises NotFound."""
    with store.read_session() as session:
        row = session.execute(select(Image.series_instance_uid, Image.path, Image.frame_number)
                              .where(Image.id == image_id)).first()
        if row is None:
            raise NotFound(f"No image with id {image_id} in the store.")
        if not row[0]:
            return [(image_id, str(row[1]), int(row[2]))]
        found = session.execute(select(Image.id, Image.path, Image.frame_number)
                                .where(Image.series_instance_uid == row[0]).order_by(Image.id).limit(limit))
        rows = [(int(i), str(p), int(f)) for i, p, f in found]
    return rows if any(i == image_id for i, _, _ in rows) else [(image_id, str(row[1]), int(row[2])), *rows[:-1]]
