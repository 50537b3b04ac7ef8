"""The store: a directory with the SQLite database (or a PostgreSQL URL), the FAISS snapshot, the
patient-key secret and the writer lock. The database is the truth; the in-memory FAISS index is caught
up from it on open and after every write. One writer at a time (an exclusive lock file); any number of
readers, which never see half a batch because every batch is one transaction."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import index_choice, snapshot, vector_codec, vectors
from storage.database import make_engine, make_sessions
from storage.errors import ModelMismatch, StoreError, StoreLocked
from storage.index_choice import IndexType
from storage.models import Deletion, Image, Precision, StoreInfo, utcnow
from storage.vector_rows import VectorRows

SCHEMA_VERSION = 1
DB_FILE = "medsearch.db"
LOCK_FILE = "write.lock"
SECRET_FILE = "patient-key.secret"


@dataclass(frozen=True)
class ModelRecord:
    """What produced a store's vectors. Two records match when revision, size and preprocessing match."""

    model_id: str
    revision: str
    dim: int
    preprocessing_version: str

    def mismatch(self, other: ModelRecord) -> str | None:
        """A sentence saying how ``other`` differs from this record, or None when they match."""
        if other.dim != self.dim:
            return f"vector size {other.dim} differs from the store's {self.dim}"
        if other.revision != self.revision:
            return f"model {other.model_id} ({other.revision}) is not the store's {self.model_id} ({self.revision})"
        if other.preprocessing_version != self.preprocessing_version:
            return (f"its vectors were made with preprocessing {self.preprocessing_version}, and this medsearch "
                    f"uses {other.preprocessing_version}. Run `medsearch upgrade --store DIR` to re-embed them in "
                    f"place (resumable)")
        return None


class Store:
    """Open with ``Store.open``; close with ``close()`` (or use it as a context manager)."""

    def __init__(self, directory: Path, database_url: str, writable: bool) -> None:
        self.directory = directory
        self.writable = writable
        self._lock_handle: Any = None
        if writable:
            self._take_lock()
        try:
            self.engine = make_engine(database_url)
        except BaseException:
            self._release_lock()
            raise
        self._sessions = make_sessions(self.engine)
        self._vector_rows = VectorRows(self.engine)
        self._index: Any = None
        self._index_generation = -1
        self._added_after_training = 0  # vectors added to a trained (IVF) index since its training
        self.filter_cache = IdSetCache()
        self.unit_indexes: dict[str, Any] = {}  # storage.units: the series and study indexes, by kind

    @classmethod
    def open(cls, directory: Path | str, *, create: bool = False, writable: bool = False,
             database_url: str | None = None) -> Store:
        """Open the store in ``directory``. Raises StoreError when it does not exist and ``create`` is
        false, StoreLocked when ``writable`` and another process writes to it."""
        directory = Path(directory).expanduser().resolve()
        url = database_url or os.environ.get("MEDSEARCH_DATABASE_URL") or f"sqlite:///{directory / DB_FILE}"
        if not directory.is_dir() or (url.startswith("sqlite") and not (directory / DB_FILE).exists()):
            if not create:
                raise StoreError(
                    f"No medsearch store at {directory}; run `medsearch index FOLDER --store {directory}` first.")
            directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, url, writable or create)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _take_lock(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handle = open(self.directory / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise StoreLocked(
                f"Another medsearch process (pid {holder}) is writing to {self.directory}; wait for it to finish."
            ) from None
        except OSError as exc:
            handle.close()
            raise StoreError(f"Cannot lock {self.directory} for writing: {exc.strerror}") from exc
        self._lock_handle = handle
        try:
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
        except OSError as exc:
            self._release_lock()
            raise StoreError(f"Cannot write the lock file in {self.directory}: {exc.strerror}") from exc

    def close(self) -> None:
        """Close the connections and release the writer lock (even when closing the database fails)."""
        try:
            self._vector_rows.close()
            self.engine.dispose()
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session in one transaction, committed on success (rolled back on an error)."""
        with self._sessions.begin() as session:
            yield session

    def read_session(self) -> Session:
        """A session for reading (``with store.read_session() as session:``); it commits nothing unless
        the caller begins a transaction on it."""
        return self._sessions()

    # -- what produced the vectors -------------------------------------------------------------

    def info(self) -> StoreInfo | None:
        with self.read_session() as session:
            return session.get(StoreInfo, 1)

    def model_record(self) -> ModelRecord | None:
        info = self.info()
        if info is None:
            return None
        return ModelRecord(info.model_id, info.model_revision, info.dim, info.preprocessing_version)

    def bind_model(self, record: ModelRecord, index_type: IndexType = IndexType.FLAT) -> None:
        """Record the model on first use; afterwards refuse any other. Raises ModelMismatch."""
        current = self.model_record()
        if current is None:
            with self.write_session() as session:
                session.add(StoreInfo(
                    id=1, schema_version=SCHEMA_VERSION, model_id=record.model_id, model_revision=record.revision,
                    dim=record.dim, preprocessing_version=record.preprocessing_version, index_type=index_type,
                    generation=0,
                ))
            return
        problem = current.mismatch(record)
        if problem and record.preprocessing_version != current.preprocessing_version:
            raise ModelMismatch(f"This store was built with {current.model_id}; {problem}.")
        if problem:
            raise ModelMismatch(
                f"This store was built with {current.model_id}; {problem}. Use the store's model "
                f"(omit --model), or index into a new --store."
            )

    def adopt_preprocessing(self, version: str) -> str:
        """Record ``version`` as the store's preprocessing (the start of an in-place upgrade: images keep
        their own version until re-embedded). Returns the version it had. Raises StoreError when empty."""
        with self.write_session() as session:
            info = session.get(StoreInfo, 1, with_for_update=True)
            if info is None:
                raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
            before, info.preprocessing_version = info.preprocessing_version, version
        return before

    def record_precision(self, name: str) -> list[str]:
        """Note that ``name`` embeds images now; returns the other precisions already in the store."""
        with self.write_session() as session:
            others = [p for p in session.scalars(select(Precision.name).order_by(Precision.name)) if p != name]
            row = session.get(Precision, name)
            if row is None:
                session.add(Precision(name=name))
            else:
                row.last_used = utcnow()
        return others

    def precisions(self) -> list[str]:
        """The precisions that embedded this store's images (empty for stores made before they were kept)."""
        with self.read_session() as session:
            return list(session.scalars(select(Precision.name).order_by(Precision.name)))

    def patient_key_secret(self) -> bytes:
        """The secret that keys patient pseudonyms; created (mode 0600) on first use."""
        path = self.directory / SECRET_FILE
        if not path.exists():
            if not self.writable:
                raise StoreError(f"{path} is missing; open the store for writing to create it.")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
        return bytes.fromhex(path.read_text().strip())

    # -- the vector index ----------------------------------------------------------------------

    def generation(self) -> int:
        info = self.info()
        return info.generation if info else 0

    def index(self) -> Any:
        """The FAISS index, caught up with the database (loaded or rebuilt on first use)."""
        record = self.model_record()
        if record is None:
            raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
        if self._index is None:
            loaded = snapshot.load_snapshot(self.directory, record.dim, record.revision)
            # a reader serves a sound snapshot of another type than recorded (a reindex killed before it
            # committed): rebuilding it on every open, never saved, would cost far more than it gains
            if loaded is not None and (loaded[1].index_type == self._index_type() or not self.writable):
                self._index, manifest = loaded
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

    def image_count(self) -> int:
        """How many vectors the database holds."""
        with self.read_session() as session:
            return session.scalar(select(func.count()).select_from(Image)) or 0

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` images by cosine for (q, dim) or (dim,) float32 ``queries``: (scores (q, k) float32,
        ids (q, k) int64), padded with -1 (``storage.vectors.search``; an ivf-pq index re-scores its
        candidates with the stored vectors)."""
        return vectors.search(self.index(), queries, k, allowed_ids, exact=self.stored_vectors)

    def stored_vectors(self, ids: np.ndarray) -> np.ndarray:
        """(n, dim) float32 stored vectors of int64 ``ids``, in their order; a row of zeros for an id no
        longer stored (removed by another process since the index was caught up)."""
        index = self._index if self._index is not None else self.index()
        return self._vector_rows.read(ids, int(index.d))

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

    def bump_generation(self, session: Session) -> int:
        """Inside a write transaction: the new generation for the rows it writes."""
        info = session.get(StoreInfo, 1, with_for_update=True)
        if info is None:
            raise StoreError("The store has no model record; bind_model first.")
        info.generation += 1
        info.updated_at = utcnow()
        return info.generation


class IdSetCache:
    """Id sets of recent filters, keyed by (filter, generation, fields version) (``storage.field_version``);
    bounded by the ids held, oldest dropped."""

    def __init__(self, max_ids: int = 4_000_000) -> None:
        self.max_ids = max_ids
        self.entries: OrderedDict[Any, np.ndarray] = OrderedDict()

    def get(self, key: Any) -> np.ndarray | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: Any, ids: np.ndarray) -> None:
        self.entries[key] = ids
        while sum(len(v) for v in self.entries.values()) > self.max_ids and len(self.entries) > 1:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every id set (frees memory; a field write no longer needs it, the fields version keys it)."""
        self.entries.clear()


def _stack(rows: Any) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64)
    matrix = vector_codec.decode_many(row[1] for row in rows)
    return ids, matrix


def _sample(session: Session, size: int) -> np.ndarray:
    """(size, dim) float32 vectors of randomly chosen images: the ids are drawn first (a scan of the id
    index, not of the vectors), then only their vectors are read."""
    from storage.queries import chunks

    chosen = list(session.scalars(select(Image.id).order_by(func.random()).limit(max(1, size))))
    rows = [row for chunk in chunks(chosen)
            for row in session.execute(select(Image.id, Image.embedding).where(Image.id.in_(chunk)))]
    return _stack(rows)[1]
