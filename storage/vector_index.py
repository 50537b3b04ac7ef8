"""The FAISS index a store serves (``store.vectors``): loaded from its snapshot or built from the
database, caught up with every committed generation, searched (an ivf-pq index re-ranked from its vector
file, ``medsearch.storage.rerank_vectors``, kept in step with the index: built, replayed, saved and
loaded with it), rebuilt as another kind, saved.

Threads share it without a lock of their own: searches take its lock shared, so any number run at once;
a catch-up, an add, a load and the swap of a rebuilt index take it alone. A rebuild reads the database
and builds outside the lock, so searches go on against the old index until the new one is whole."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import StoreError
from medsearch.storage import (
    index_choice,
    rerank_vectors,
    search_width,
    snapshot,
    vector_codec,
    vector_file,
    vector_rows,
    vectors,
)
from medsearch.storage.chunking import chunks
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.index_choice import IndexType
from medsearch.storage.model_record import ModelRecord
from medsearch.storage.models import Deletion, Image, StoreInfo, TextEmbedding
from medsearch.storage.rerank_vectors import RerankVectors
from medsearch.storage.row_quantizer import FIT_SAMPLE, QuantizedRows, Quantizer
from medsearch.storage.rwlock import ReadWriteLock
from medsearch.storage.vector_rows import VectorRows
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker


class VectorIndex:
    """The in-memory index of the database behind ``engine`` and the generation it is caught up to.
    ``close()`` stops the threads that read stored vectors."""

    def __init__(self, directory: Path, engine: Engine, sessions: sessionmaker[Session], writable: bool) -> None:
        self.directory = directory
        self.writable = writable
        self._engine = engine
        self._sessions = sessions
        self._rows = VectorRows(engine)
        self._lock = ReadWriteLock()
        self._saving = threading.Lock()  # one snapshot write at a time (they share a temporary name)
        self._index: Any = None
        self._generation = -1
        self._added_after_training = 0  # vectors added to a trained (IVF) index since its training
        self._rerank: RerankVectors | None = None  # an ivf-pq index's vector file; None: read from the database
        self._width: int | None = None  # the search width measured when the index was built (search_width)

    def close(self) -> None:
        self._rows.close()

    # -- loading and catching up ---------------------------------------------------------------

    def load(self) -> None:
        """Load the index (from the snapshot, or built from the database) on first use, and catch it up
        with the database. Raises StoreError for an empty store."""
        if self._index is None:  # every query asks: the model record is read only to load the index
            with self._lock.writing():
                if self._index is None:
                    self._load_or_build(self._record())
        self.catch_up()

    def _load_or_build(self, record: ModelRecord) -> None:
        loaded = rerank_vectors.load_snapshot(self.directory, record.dim, record.revision)
        # a reader serves a sound snapshot of another type than recorded (a reindex killed before it
        # committed): rebuilding it on every open, never saved, would cost far more than it gains
        if loaded is not None and (loaded[1].index_type == self._index_type() or not self.writable):
            index, manifest, rerank = loaded
            vectors.tune(index, manifest.search_width)
            self._install(index, manifest.generation, manifest.added_after_training, rerank, manifest.search_width)
            if rerank is None and self._writes_vector_file(index):
                self._rebuild_vector_file(record.dim)
        else:
            self._install(*self._build(record.dim))

    def _writes_vector_file(self, index: Any, count: int | None = None) -> bool:
        """Whether this process keeps a vector file for ``index`` of ``count`` vectors (default its own):
        a writer's ivf-pq index whose rows the page cache can hold (``vector_file.fits_memory``)."""
        count = int(index.ntotal) if count is None else count
        return (self.writable and index_type_of(index) is IndexType.IVF_PQ
                and vector_file.fits_memory(count, int(index.d)))

    def _rebuild_vector_file(self, dim: int) -> None:
        """Write the vector file of a loaded ivf-pq snapshot that has none (a store of an earlier version)
        or whose file is out of step, from the database (the lock taken alone; this process is the one
        writer, so the database stays at the generation the index is caught up to here). A file that cannot
        be written is left out: the re-rank reads the database."""
        self._replay()
        if self._rerank is not None:
            return  # the replay rebuilt the index, and its vector file with it
        with self._sessions() as session, session.begin():
            generation = session.scalar(select(StoreInfo.generation).where(StoreInfo.id == 1)) or 0
            dtype = _row_type(int(self._index.ntotal), dim)
            quantizer = _quantizer(dtype, _sample(session, FIT_SAMPLE) if dtype == "int8" else None, dim)
            rows = session.execute(select(Image.id, Image.embedding).order_by(Image.id)
                                   .execution_options(yield_per=20_000))
            try:
                rerank = rerank_vectors.built(self.directory, dim, (_stack(chunk) for chunk in rows.partitions()),
                                              dtype, quantizer)
            except OSError:
                return  # (a full disk) the re-rank reads the database meanwhile; check reports the file
        if generation == self._generation and rerank.count() == vectors.live_count(self._index):
            self._rerank = rerank
        else:  # a commit of another thread in between: build both from one read
            self._install(*self._build(dim))

    def catch_up(self) -> None:
        """Replay the rows and deletions committed after the in-memory index's generation."""
        if self._stored_generation() == self._generation:
            return  # every query asks: one plain statement, not a session (1.3 ms -> 0.1 ms here)
        with self._lock.writing():
            if self._index is not None:
                self._replay()

    def _replay(self) -> None:
        """``catch_up`` under the lock taken alone."""
        with self._sessions() as session, session.begin():
            generation = session.scalar(select(StoreInfo.generation).where(StoreInfo.id == 1)) or 0
            if generation == self._generation:
                return
            gone = np.fromiter(session.scalars(select(Deletion.image_id).where(
                Deletion.generation > self._generation)), dtype=np.int64)
            self._remove(gone)
            rows = session.execute(
                select(Image.id, Image.embedding).where(Image.generation > self._generation).order_by(Image.id)
            ).all()
            count = session.scalar(select(func.count()).select_from(Image)) or 0
        if rows:
            self._add(*_stack(rows))
        self._generation = generation
        rerank = self._rerank
        if vectors.live_count(self._index) != count or (rerank is not None and rerank.count() != count):
            self._install(*self._build(self._index.d))

    def _stored_generation(self) -> int:
        with self._engine.connect() as connection:
            found = connection.exec_driver_sql(f"SELECT generation FROM {StoreInfo.__tablename__} WHERE id = 1")
            return int(found.scalar() or 0)

    def apply(self, generation: int, added: tuple[np.ndarray, np.ndarray], removed: np.ndarray) -> None:
        """After this process committed ``generation``, apply the same change to the in-memory index."""
        with self._lock.writing():
            if self._index is None or self._generation != generation - 1:
                return
            self._remove(removed)
            self._add(*added)
            self._generation = generation

    # -- reading -------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` images by cosine for (q, dim) or (dim,) float32 ``queries``: (scores (q, k) float32,
        ids (q, k) int64), padded with -1 (``medsearch.storage.vectors.search``; an ivf-pq index re-scores
        its candidates with the stored vectors). Raises StoreError for an empty store."""
        self.load()
        with self._lock.reading():
            return vectors.search(self._index, queries, k, allowed_ids, exact=self._read_rows)

    def _read_rows(self, ids: np.ndarray) -> np.ndarray | QuantizedRows:
        """The re-rank's vectors: from the vector file (int8 rows as their codes, the best few of them read
        again from the database: ``reranked.INT8_REFINED``), or from the database without one."""
        rerank = self._rerank
        if rerank is None:
            return self._rows.read(ids, int(self._index.d))
        rows = rerank.for_rerank(ids)
        if isinstance(rows, QuantizedRows):  # its best few scored again from the database
            return rows._replace(exact=partial(self._rows.read, dim=int(self._index.d)))
        return rows

    def vector_file(self) -> RerankVectors | None:
        """The re-rank vectors an ivf-pq index serves from its vector file (loaded and caught up first), or
        None (another kind, or read from the database: a reader of a store whose file is missing)."""
        self.load()
        return self._rerank

    def stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        """(n, dim) float32 stored vectors of int64 ``ids``, in their order; a row of zeros for an id no
        longer stored (removed by another process since the index was caught up). Raises StoreError for an
        empty store."""
        return self._rows.read(ids, self._record().dim)

    def count(self) -> int:
        """How many vectors a search can return (caught up first). Raises StoreError for an empty store."""
        self.load()
        with self._lock.reading():
            return vectors.live_count(self._index)

    def ids(self) -> np.ndarray:
        """The int64 ids a search can return, in the index's storage order (caught up first)."""
        self.load()
        with self._lock.reading():
            return vectors.ids(self._index)

    def kind(self) -> IndexType:
        """The kind of the index in service (which may differ from the recorded one: ``load``)."""
        self.load()
        with self._lock.reading():
            return index_type_of(self._index)

    def generation(self) -> int:
        """The generation the in-memory index is caught up to (-1 before it is loaded)."""
        return self._generation

    def added_after_training(self) -> tuple[int, int]:
        """(vectors added since the index was trained, vectors in the index) of an ivf-sq8 or ivf-pq index;
        (0, count) for the kinds that are not trained. Past ``index_choice.RETRAIN_FRACTION`` a
        ``reindex`` retrains it."""
        self.load()
        with self._lock.reading():
            trained = index_choice.is_trained_kind(index_type_of(self._index))
            return (self._added_after_training if trained else 0), int(self._index.ntotal)

    def index(self) -> Any:
        """The FAISS index itself, loaded and caught up, for inspection (tests, benchmarks): search it
        through ``search``, which holds the lock. Raises StoreError for an empty store."""
        self.load()
        return self._index

    def warm_vectors(self, stop: threading.Event) -> int:
        """For an ivf-pq index, read its vector file (or without one the stored vectors, ``VectorRows.warm``)
        once so that the page cache holds them for the re-rank, unless larger than ``WARM_SHARE`` of the
        memory available; returns the rows read (0 for the other kinds, which never read them)."""
        info = self._info()
        if info is None or IndexType.parse(info.index_type) != IndexType.IVF_PQ:
            return 0
        rerank = self.vector_file()
        if rerank is None or rerank.base is None:
            return self._rows.warm(stop, info.dim)
        if rerank.base.path.stat().st_size > vector_rows.WARM_SHARE * vector_rows.available_memory():
            return 0  # it would only push out other pages
        return vector_file.warm(rerank.base.path, stop)

    # -- rebuilding and saving -----------------------------------------------------------------

    def rebuild(self) -> None:
        """Build the index again from every vector in the database; searches use the old one meanwhile.
        Raises StoreError for an empty store."""
        built = self._build(self._record().dim)
        with self._lock.writing():
            self._install(*built)

    def reindex(self, index_type: IndexType | str) -> None:
        """Switch the store to ``index_type`` (``flat``, ``hnsw``, ``ivf-sq8``, ``ivf-pq``): build the index from the
        database's vectors, write the snapshot, then record the type (a kill before that leaves the old
        type). Raises StoreError when not writable or empty, ValueError for an unknown type."""
        index_type = IndexType.parse(index_type)
        if not self.writable:
            raise StoreError(f"Open the store at {self.directory} for writing to rebuild its index.")
        built = self._build(self._record().dim, index_type)
        with self._lock.writing():
            self._install(*built)
        self.save_snapshot()  # readers keep the old snapshot until the new one is whole (an atomic rename)
        with self._sessions.begin() as session:
            info = session.get(StoreInfo, 1, with_for_update=True)
            assert info is not None
            info.index_type = index_type

    def rewrite_vector_file(self) -> None:
        """Write an ivf-pq index's vector file again from the database (in ``vector_file.row_type`` rows),
        then the snapshot naming it; nothing for the other kinds. Raises StoreError when not writable, for
        an empty store, or when the files cannot be written."""
        if not self.writable:
            raise StoreError(f"Open the store at {self.directory} for writing to rewrite its vector file.")
        self.load()
        with self._lock.writing():
            if self._writes_vector_file(self._index):
                self._rerank = None
                self._rebuild_vector_file(int(self._index.d))
                if self._rerank is None:
                    raise StoreError(f"the vector file could not be written in {self.directory}")
        self.save_snapshot()

    def save_snapshot(self) -> None:
        """Write the FAISS snapshot (atomically) if it is behind the database. Raises StoreError when it
        cannot be written (``medsearch.storage.snapshot.save_snapshot``)."""
        info = self._info()
        if info is None or not self.writable:
            return
        self.load()
        with self._saving, self._lock.reading():
            named = ("", "")
            rerank = self._rerank
            kind = None if rerank is None else vector_file.row_type(rerank.count(), rerank.dim)
            if kind is None:
                self._rerank = None  # grown past the memory: the re-rank reads the database from now on
            elif rerank is not None:
                # grown past float32's share: int8 from now on (rows made int8 are not made float again: a
                # rewrite_vector_file or rebuild writes them from the database)
                dtype = "int8" if kind == "int8" and rerank.quantizer is None else ""
                if rerank.needs_writing() or dtype:
                    self._rerank = self._written(rerank, dtype)  # searches in flight keep the old object
                assert self._rerank.base is not None
                named = (self._rerank.base.name, self._rerank.base.sha256)
            snapshot.save_snapshot(self._index, self.directory, self._generation, info.model_revision,
                                   index_type_of(self._index), self._added_after_training, named, self._width)

    def _written(self, rerank: RerankVectors, dtype: str = "") -> RerankVectors:
        """``rerank`` written to a new vector file (in rows of ``dtype``, default its own). Raises StoreError
        (one line) when it cannot be."""
        try:
            return rerank.written(self.directory, dtype)
        except OSError as error:
            raise snapshot.write_failed(self.directory, error, rerank.count() * rerank.dim * 2) from None

    def _build(self, dim: int, index_type: IndexType | None = None
               ) -> tuple[Any, int, int, RerankVectors | None, int | None]:
        """(index, generation, 0, vector file, search width): the index (of the recorded type, or
        ``index_type``) built from every vector in the database, streamed in batches (an IVF kind is trained
        first on a random sample); an ivf-pq index's vector file is written in the same pass (not by a
        reader: it reads the database); an hnsw / ivf-sq8 index's search width measured
        (``medsearch.storage.search_width``; None for the other kinds)."""
        index_type = index_type or self._index_type()
        with self._sessions() as session, session.begin():
            generation = session.scalar(select(StoreInfo.generation)) or 0
            sample, count = None, session.scalar(select(func.count()).select_from(Image)) or 0
            if index_choice.is_trained_kind(index_type) and count == 0:
                index_type = IndexType.FLAT  # nothing to train on; the next rebuild (on open) trains the ivf index
            if index_choice.is_trained_kind(index_type):
                sample = _sample(session, index_choice.train_size(count, index_type))
            index = vectors.new_index(dim, index_type, sample=sample, count=count)
            dtype = _row_type(count, dim)
            quantizer = _quantizer(dtype, sample, dim)
            del sample
            result = session.execute(select(Image.id, Image.embedding).order_by(Image.id)
                                     .execution_options(yield_per=20_000))
            chunks = (_added(index, *_stack(chunk)) for chunk in result.partitions())
            rerank = None
            if not self._writes_vector_file(index, count):
                for _chunk in chunks:
                    pass
            else:
                try:
                    rerank = rerank_vectors.built(self.directory, dim, chunks, dtype, quantizer)
                except OSError as error:
                    raise snapshot.write_failed(self.directory, error, count * dim * 2) from None
            width = search_width.choose(index, _width_queries(session, dim)) if search_width.tunable(index) else None
        return index, generation, 0, rerank, width

    def _install(self, index: Any, generation: int, added_after_training: int,
                 rerank: RerankVectors | None = None, width: int | None = None) -> None:
        """Serve ``index`` (the caller holds the lock alone, or no other thread has the object yet)."""
        self._index, self._generation, self._added_after_training = index, generation, added_after_training
        self._rerank = rerank
        self._width = width

    def _add(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        vectors.add(self._index, ids, matrix)
        if self._rerank is not None:
            self._rerank.add(ids, matrix)
        self._added_after_training += len(ids)

    def _remove(self, ids: np.ndarray) -> None:
        vectors.remove(self._index, ids)
        if self._rerank is not None:
            self._rerank.remove(ids)

    # -- the store's record --------------------------------------------------------------------

    def _info(self) -> StoreInfo | None:
        with self._sessions() as session:
            return session.get(StoreInfo, 1)

    def _record(self) -> ModelRecord:
        info = self._info()
        if info is None:
            raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
        return info.model_record()

    def _index_type(self) -> IndexType:
        info = self._info()
        return IndexType.parse(info.index_type) if info else IndexType.FLAT


def _row_type(count: int, dim: int) -> str:
    """The rows' type of a vector file of ``count`` rows (``vector_file.row_type``; any where none is kept)."""
    return vector_file.row_type(count, dim) or vector_file.ROW_DTYPE


def _quantizer(dtype: str, sample: np.ndarray | None, dim: int) -> Quantizer | None:
    """Of int8 rows, their quantizer fitted to (a part of) ``sample``; None for float rows."""
    if dtype != "int8":
        return None
    return Quantizer.fitted(np.empty((0, dim)) if sample is None else sample[:FIT_SAMPLE], dim)


def _added(index: Any, ids: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, matrix), added to ``index`` (a build: none of them is there yet)."""
    vectors.add(index, ids, matrix, replace=False)
    return ids, matrix


def _stack(rows: Any) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64)
    matrix = vector_codec.decode_many(row[1] for row in rows)
    return ids, matrix


def _width_queries(session: Session, dim: int) -> np.ndarray:
    """Text-like queries to measure a search width with: the store's cached text vectors of this dimension
    when there are ``search_width.CACHED_MIN`` of them, else synthetic ones made from a sample of the stored
    vectors."""
    blobs = session.scalars(select(TextEmbedding.embedding).where(func.length(TextEmbedding.embedding) == 4 * dim)
                            .limit(search_width.QUERIES)).all()
    if len(blobs) >= search_width.CACHED_MIN:
        return np.stack([np.frombuffer(blob, dtype=np.float32) for blob in blobs])
    return search_width.text_like(_sample(session, 4 * search_width.QUERIES))


def _sample(session: Session, size: int) -> np.ndarray:
    """(size, dim) float32 vectors of randomly chosen images: the ids are drawn first (a scan of the id
    index, not of the vectors), then only their vectors are read."""
    chosen = list(session.scalars(select(Image.id).order_by(func.random()).limit(max(1, size))))
    rows = [row for chunk in chunks(chosen)
            for row in session.execute(select(Image.id, Image.embedding).where(Image.id.in_(chunk)))]
    return _stack(rows)[1]
