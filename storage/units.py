"""Series and study vectors: the normalised mean of a unit's image vectors, kept in the ``units`` table
in the same transaction as the images (``refresh``, called by ``medsearch.storage.writes.write_batch``), and in an
in-memory FAISS index per kind, caught up by generation like the image index (``unit_index``). A kill at
any point leaves the table consistent with the images, since both are one transaction; the in-memory
index is rebuilt or replayed from the table on first use."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import StoreError
from medsearch.storage import vector_codec, vectors
from medsearch.storage.models import Image, StoreInfo
from medsearch.storage.unit_models import Unit
from sqlalchemy import func, select

if TYPE_CHECKING:
    from medsearch.storage.store import Store

KINDS = {"series": "series_instance_uid", "study": "study_instance_uid"}
"""Each unit kind and the image column that names its members."""

UnitKey = tuple[str, str]
"""(kind, uid)."""


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


@dataclass
class HeldIndex:
    index: Any
    generation: int


def unit_index(store: Store, kind: str) -> Any:
    """The FAISS index of ``kind``'s unit vectors (ids = ``units.id``), caught up with the database:
    built on first use, then the units stamped after its generation are replayed (removed, and added
    again when they still have images). Raises StoreError when the store is empty, or when the units of
    a store made before them were never built (`medsearch check --repair` builds them)."""
    record = store.model_record()
    if record is None:
        raise StoreError(f"The store at {store.directory} is empty; index a folder first.")
    held = store.unit_indexes.get(kind)
    with store.read_session() as session, session.begin():
        generation = session.scalar(select(StoreInfo.generation).where(StoreInfo.id == 1)) or 0
        if held is not None and held.generation == generation:
            return held.index
        since = -1 if held is None else held.generation
        rows = session.execute(select(Unit.id, Unit.embedding).where(Unit.kind == kind, Unit.generation > since)).all()
        live = session.scalar(select(func.count()).select_from(Unit).where(Unit.kind == kind, Unit.size > 0)) or 0
        if held is None and live == 0 and missing_units(session):
            raise StoreError(f"The series and study vectors of {store.directory} are not built yet; run "
                             f"`medsearch check --repair --store {store.directory}` once.")
    index = vectors.new_index(record.dim) if held is None else held.index
    vectors.remove(index, np.asarray([r[0] for r in rows], dtype=np.int64))
    kept = [(i, blob) for i, blob in rows if blob is not None]
    if kept:
        vectors.add(index, np.asarray([i for i, _b in kept], dtype=np.int64),
                    vector_codec.decode_many(b for _i, b in kept))
    if vectors.live_count(index) != live:  # out of step: build it whole from the table
        store.unit_indexes.pop(kind, None)
        return unit_index(store, kind)
    store.unit_indexes[kind] = HeldIndex(index, generation)
    return index


def missing_units(session: Any) -> set[UnitKey]:
    """Units that images name but the table does not have (a store made before units were kept)."""
    known = {(kind, uid) for kind, uid in session.execute(select(Unit.kind, Unit.uid).where(Unit.size > 0))}
    named: set[UnitKey] = set()
    for kind, column in KINDS.items():
        values = session.scalars(select(getattr(Image, column)).where(getattr(Image, column).is_not(None)).distinct())
        named |= {(kind, str(v)) for v in values}
    return named - known


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
