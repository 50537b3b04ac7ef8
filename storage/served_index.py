"""The FAISS index a store serves: loaded from its snapshot or built from the database, caught up with
every committed generation, searched (an ivf-pq index re-ranked from the stored vectors), rebuilt as
another kind, saved. A base of ``medsearch.storage.store.Store``, which gives it the database; kept apart so that
each stays readable."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import StoreError
from medsearch.storage import index_choice, snapshot, vector_codec, vectors
from medsearch.storage.index_choice import IndexType
from medsearch.storage.model_record import ModelRecord
from medsearch.storage.models import Deletion, Image, StoreInfo
from medsearch.storage.vector_rows import VectorRows
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session


class ServedIndex(ABC):
    """The in-memory index of a store and its generation. ``Store`` provides the database (the abstract
    methods)."""

    directory: Path
    writable: bool
    engine: Engine

    def __init__(self, engine: Engine) -> None:
        self._vector_rows = VectorRows(engine)
        self._index: Any = None
        self._index_generation = -1
        self._added_after_training = 0  # vectors added to a trained (IVF) index since its training

    @abstractmethod
    def read_session(self) -> Session:
        """A session for reading (``Store.read_session``)."""

    @abstractmethod
    def write_session(self) -> AbstractContextManager[Session]:
        """A session in one committed transaction (``Store.write_session``)."""

    @abstractmethod
    def model_record(self) -> ModelRecord | None:
        """What produced the store's vectors, or None for an empty store."""

    @abstractmethod
    def info(self) -> StoreInfo | None:
        """The store's one ``store_info`` row, or None for an empty store."""

    def index(self) -> Any:
        """The FAISS index, caught up with the database (loaded or rebuilt on first use). Raises StoreError
        for an empty store."""
        if self._index is None:  # every query asks: the model record is read only to load the index
            record = self.model_record()
            if record is None:
                raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
            loaded = snapshot.load_snapshot(self.directory, record.dim, record.revision)
            # a reader serves a sound snapshot of another type than recorded (a reindex killed before it
            # committed): rebuilding it on every open, never saved, would cost far more than it gains
            if loaded is not None and (loaded[1].index_type == self._index_type() or not self.writable):
                self._index, manifest = loaded
                vectors.tune(self._index)
                self._index_generation = manifest.generation
                self._added_after_training = manifest.added_after_training
            else:
                self._rebuild(record.dim)
        self.catch_up()
        return self._index

    def catch_up(self) -> None:
        """Replay the rows and deletions committed after the in-memory index's generation."""
        if self._stored_generation() == self._index_generation:
            return  # every query asks: one plain statement, not a session (1.3 ms -> 0.1 ms here)
        with self.read_session() as session, session.begin():
            generation = session.scalar(select(StoreInfo.generation).where(StoreInfo.id == 1)) or 0
            if generation == self._index_generation:
                return
            gone = session.scalars(select(Deletion.image_id).where(Deletion.generation > self._index_generation))
            vectors.remove(self._index, np.fromiter(gone, dtype=np.int64))
            rows = session.execute(
                select(Image.id, Image.embedding).where(Image.generation > self._index_generation)
            ).all()
            count = session.scalar(select(func.count()).select_from(Image)) or 0
        if rows:
            self._add(*_stack(rows))
        self._index_generation = generation
        if vectors.live_count(self._index) != count:
            self._rebuild(self._index.d)

    def _stored_generation(self) -> int:
        with self.engine.connect() as connection:
            found = connection.exec_driver_sql(f"SELECT generation FROM {StoreInfo.__tablename__} WHERE id = 1")
            return int(found.scalar() or 0)

    def rebuild_index(self) -> None:
        """Drop the in-memory index and build it again from every vector in the database."""
        record = self.model_record()
        if record is None:
            raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
        self._rebuild(record.dim)

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` images by cosine for (q, dim) or (dim,) float32 ``queries``: (scores (q, k) float32,
        ids (q, k) int64), padded with -1 (``medsearch.storage.vectors.search``; an ivf-pq index re-scores its
        candidates with the stored vectors)."""
        return vectors.search(self.index(), queries, k, allowed_ids, exact=self.stored_vectors)

    def stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        """(n, dim) float32 stored vectors of int64 ``ids``, in their order; a row of zeros for an id no
        longer stored (removed by another process since the index was caught up)."""
        index = self._index if self._index is not None else self.index()
        return self._vector_rows.read(ids, int(index.d))

    def warm_vectors(self, stop: threading.Event) -> int:
        """For an ivf-pq index, read the stored vectors once so that the page cache holds them for the
        re-rank (``VectorRows.warm``); returns the rows read (0 for the other kinds, which never read them)."""
        record = self.model_record()
        if record is None or self._index_type() != IndexType.IVF_PQ:
            return 0
        return self._vector_rows.warm(stop, record.dim)

    def added_after_training(self) -> tuple[int, int]:
        """(vectors added since the index was trained, vectors in the index) of an ivf-sq8 or ivf-pq index;
        (0, count) for the kinds that are not trained. Past ``index_choice.RETRAIN_FRACTION`` a
        ``reindex`` retrains it."""
        index = self.index()
        added = self._added_after_training if index_choice.is_trained_kind(vectors.index_type_of(index)) else 0
        return added, int(index.ntotal)

    def _add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        vectors.add(self._index, ids, matrix)
        self._added_after_training += len(ids)

    def _index_type(self) -> IndexType:
        info = self.info()
        return IndexType.parse(info.index_type) if info else IndexType.FLAT

    def _rebuild(self, dim: int, index_type: IndexType | None = None) -> None:
        """Build the index (of the recorded type, or ``index_type``) again from every vector in the database,
        streamed in batches (an IVF kind is trained first on a random sample). Until it is done, the index
        in service stays the old one."""
        index_type = index_type or self._index_type()
        with self.read_session() as session, session.begin():
            generation = session.scalar(select(StoreInfo.generation)) or 0
            sample, count = None, session.scalar(select(func.count()).select_from(Image)) or 0
            if index_choice.is_trained_kind(index_type) and count == 0:
                index_type = IndexType.FLAT  # nothing to train on; the next rebuild (on open) trains the ivf index
            if index_choice.is_trained_kind(index_type):
                sample = _sample(session, index_choice.train_size(count, index_type))
            index = vectors.new_index(dim, index_type, sample=sample, count=count)
            del sample
            result = session.execute(select(Image.id, Image.embedding).execution_options(yield_per=20_000))
            for chunk in result.partitions():
                vectors.add(index, *_stack(chunk), replace=False)
        self._index, self._index_generation, self._added_after_training = index, generation, 0

    def reindex(self, index_type: IndexType | str) -> None:
        """Switch the store to ``index_type`` (``flat``, ``hnsw``, ``ivf-sq8``, ``ivf-pq``): build the index from the
        database's vectors, write the snapshot, then record the type (a kill before that leaves the old
        type). Raises StoreError when not writable or empty, ValueError for an unknown type."""
        index_type = IndexType.parse(index_type)
        if not self.writable:
            raise StoreError(f"Open the store at {self.directory} for writing to rebuild its index.")
        record = self.model_record()
        if record is None:
            raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
        self._rebuild(record.dim, index_type)
        self.save_snapshot()  # readers keep the old snapshot until the new one is whole (an atomic rename)
        with self.write_session() as session:
            info = session.get(StoreInfo, 1, with_for_update=True)
            assert info is not None
            info.index_type = index_type

    def save_snapshot(self) -> None:
        """Write the FAISS snapshot (atomically) if it is behind the database."""
        record = self.model_record()
        if record is None or not self.writable:
            return
        index = self.index()
        snapshot.save_snapshot(index, self.directory, self._index_generation, record.revision,
                               vectors.index_type_of(index), self._added_after_training)

    def apply_to_index(self, generation: int, added: tuple[np.ndarray, np.ndarray], removed: np.ndarray) -> None:
        """After this process committed ``generation``, apply the same change to the in-memory index."""
        if self._index is None or self._index_generation != generation - 1:
            return
        vectors.remove(self._index, removed)
        self._add(*added)
        self._index_generation = generation


def _stack(rows: Any) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64)
    matrix = vector_codec.decode_many(row[1] for row in rows)
    return ids, matrix


def _sample(session: Session, size: int) -> np.ndarray:
    """(size, dim) float32 vectors of randomly chosen images: the ids are drawn first (a scan of the id
    index, not of the vectors), then only their vectors are read."""
    from medsearch.storage.queries import chunks

    chosen = list(session.scalars(select(Image.id).order_by(func.random()).limit(max(1, size))))
    rows = [row for chunk in chunks(chosen)
            for row in session.execute(select(Image.id, Image.embedding).where(Image.id.in_(chunk)))]
    return _stack(rows)[1]
