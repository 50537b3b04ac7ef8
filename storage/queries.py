"""The read queries the search side needs, as functions of a ``Store`` that return rows, not sessions.

Every query that puts a list of ids or paths into one statement goes through
``medsearch.storage.chunking.chunked``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from medsearch.storage import index_choice, snapshot, vector_codec
from medsearch.storage.chunking import chunked
from medsearch.storage.models import METADATA_COLUMNS, Failure, Image, ImageField, Root
from medsearch.storage.store import Store
from sqlalchemy import String, cast, func, select


def images_by_id(store: Store, ids: Sequence[int]) -> dict[int, tuple[str, dict[str, Any]]]:
    """{id: (path, metadata)} for the ids still stored; metadata as ``metadata_of`` gives it."""
    with store.read_session() as session:
        rows = chunked(ids, lambda chunk: session.scalars(select(Image).where(Image.id.in_(chunk))))
        return {row.id: (row.path, metadata_of(row)) for row in rows}


def metadata_of(row: Image) -> dict[str, Any]:
    """The row's non-null metadata columns, JSON-ready (dates as ISO strings)."""
    data = {}
    for name in METADATA_COLUMNS:
        value = getattr(row, name)
        if value is None:
            continue
        data[name] = value.isoformat() if isinstance(value, dt.date) else value
    return data


def paths_by_id(store: Store, ids: Sequence[int]) -> dict[int, str]:
    """{id: stored path} for the ids still stored."""
    with store.read_session() as session:
        rows = chunked(ids, lambda chunk: session.execute(select(Image.id, Image.path).where(Image.id.in_(chunk))))
        return {image_id: path for image_id, path in rows}


def image_path(store: Store, image_id: int) -> str | None:
    """The stored path of an image id, or None when there is no such image."""
    with store.read_session() as session:
        return session.scalar(select(Image.path).where(Image.id == image_id))


def vector_of_id(store: Store, image_id: int) -> np.ndarray | None:
    """The stored (dim,) float32 vector of an image id, or None when there is no such image."""
    with store.read_session() as session:
        blob = session.scalar(select(Image.embedding).where(Image.id == image_id))
    return None if blob is None else vector_codec.decode(blob)


def vector_of_path(store: Store, path: str) -> np.ndarray | None:
    """The stored (dim,) vector of an indexed file (its first frame by number), or None when not indexed."""
    with store.read_session() as session:
        blob = session.scalar(select(Image.embedding).where(Image.path == path)
                              .order_by(Image.frame_number).limit(1))
    return None if blob is None else vector_codec.decode(blob)


def fields_by_id(store: Store, ids: Sequence[int], names: Sequence[str] | None = None) -> dict[int, dict[str, Any]]:
    """{id: {field: value}} of the sidecar/label fields of ``ids`` (only ``names`` if given), typed as
    imported: whole numbers as int, other numbers as float, bools as bool, dates as ISO text, text as str.
    Ids with no field are left out."""
    with store.read_session() as session:
        def query(chunk: list[int]) -> Iterable[ImageField]:
            statement = select(ImageField).where(ImageField.image_id.in_(chunk))
            if names is not None:
                statement = statement.where(ImageField.name.in_(list(names)))
            return session.scalars(statement.order_by(ImageField.image_id, ImageField.name))

        found: dict[int, dict[str, Any]] = {}
        for row in chunked(ids, query):
            found.setdefault(row.image_id, {})[row.name] = typed_value(row)
        return found


def typed_value(row: ImageField) -> Any:
    """The one value an ``ImageField`` row holds, as its ``kind`` says (JSON-ready)."""
    if row.kind == "bool":
        return None if row.number is None else bool(row.number)
    if row.kind == "number" and row.number is not None:
        return int(row.number) if float(row.number).is_integer() else row.number
    if row.kind == "date" and row.date is not None:
        return row.date.isoformat()
    return row.text


def ids_of_path(store: Store, path: str) -> list[int]:
    """The ids of an indexed file's images (one per frame), in frame order; empty when not indexed."""
    with store.read_session() as session:
        return list(session.scalars(select(Image.id).where(Image.path == path).order_by(Image.frame_number)))


def field_names(store: Store) -> set[str]:
    """The distinct sidecar/label field names in the store."""
    with store.read_session() as session:
        return set(session.scalars(select(ImageField.name).distinct()))


def group_values(store: Store, ids: Sequence[int], column: str) -> dict[int, Any]:
    """The value of ``column`` (a metadata column, ``path``, or a sidecar/label field) for each id that
    has one."""
    with store.read_session() as session:
        if column in METADATA_COLUMNS or column == "path":
            attribute = getattr(Image, column)
            rows = chunked(ids, lambda chunk: session.execute(
                select(Image.id, attribute).where(Image.id.in_(chunk))))
        else:
            value = func.coalesce(ImageField.text, cast(ImageField.number, String), cast(ImageField.date, String))
            rows = chunked(ids, lambda chunk: session.execute(select(ImageField.image_id, value).where(
                ImageField.image_id.in_(chunk), ImageField.name == column)))
        return {image_id: found for image_id, found in rows if found is not None}


def embeddings_by_path(store: Store, paths: Sequence[str]) -> dict[str, tuple[int, np.ndarray]]:
    """{path: (id, (dim,) float32 vector)} for the indexed ``paths`` (one frame per path)."""
    with store.read_session() as session:
        rows = chunked(paths, lambda chunk: session.execute(
            select(Image.id, Image.path, Image.embedding).where(Image.path.in_(chunk))))
        return {path: (i, vector_codec.decode(blob)) for i, path, blob in rows}


def file_count(store: Store) -> int:
    """How many distinct files the stored images come from."""
    with store.read_session() as session:
        return session.scalar(select(func.count(func.distinct(Image.path)))) or 0


def failures(store: Store) -> list[dict[str, str]]:
    """The files that failed to index, by path: [{"path", "reason"}]."""
    with store.read_session() as session:
        rows = session.execute(select(Failure.path, Failure.reason).order_by(Failure.path))
        return [{"path": path, "reason": reason} for path, reason in rows]


def roots(store: Store) -> list[str]:
    """The indexed root folders, sorted."""
    with store.read_session() as session:
        return list(session.scalars(select(Root.path).order_by(Root.path)))


def ids_where(store: Store, where: Sequence[str]) -> np.ndarray:
    """The ids (int64, sorted) of images matching every ``where`` expression (``medsearch.storage.filters``),
    remembered by the store's ``FilterCache``. Raises InvalidQuery pointing at the mistake."""
    with store.read_session() as session, session.begin():
        return store.filter_cache.ids(session, where)


def all_ids(store: Store) -> np.ndarray:
    """Every stored image id (int64, sorted)."""
    with store.read_session() as session:
        return np.fromiter(session.scalars(select(Image.id).order_by(Image.id)), dtype=np.int64)


def embeddings(store: Store, ids: Sequence[int]) -> dict[int, tuple[str, np.ndarray]]:
    """{id: (path, (dim,) float32 vector)} for the ids still stored."""
    with store.read_session() as session:
        rows = chunked(ids, lambda chunk: session.execute(
            select(Image.id, Image.path, Image.embedding).where(Image.id.in_(chunk))))
        return {i: (path, vector_codec.decode(blob)) for i, path, blob in rows}


def snapshot_generation(store: Store) -> int | None:
    """The generation of the FAISS snapshot on disk (its manifest), or None when there is none."""
    manifest = snapshot.read_manifest(store.directory)
    return None if manifest is None else manifest.generation


def snapshot_width(store: Store) -> int | None:
    """The search width (hnsw efSearch, ivf-sq8 probes) measured for the snapshot on disk when its index was
    built (``medsearch.storage.search_width``); None for flat and ivf-pq, no snapshot, or one built before
    widths were measured (it searches at ``index_choice``'s default)."""
    manifest = snapshot.read_manifest(store.directory)
    return None if manifest is None else manifest.search_width


def snapshot_training(store: Store) -> dict[str, Any] | None:
    """Of an ivf-sq8 / ivf-pq snapshot on disk: the vectors it holds that were added after it was trained,
    their share, and the share past which a ``reindex`` is due; None for other kinds or no snapshot."""
    manifest = snapshot.read_manifest(store.directory)
    if manifest is None or not index_choice.is_trained_kind(manifest.index_type):
        return None
    return {"images": manifest.added_after_training, "share": round(manifest.added_after_training
                                                                    / max(1, manifest.count), 4),
            "retrain_past": index_choice.RETRAIN_FRACTION}
