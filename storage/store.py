"""The store: a directory with the SQLite database (or a PostgreSQL URL), the FAISS snapshot, the
patient-key secret and the writer lock. The database is the truth; the in-memory FAISS index
(``store.vectors``, ``medsearch.storage.vector_index``) is caught up from it on open and after every write.
One writer at a time (an exclusive lock file); any number of readers, which never see half a batch
because every batch is one transaction.

A store is composed of what it serves: ``vectors`` (the image index), ``unit_vectors`` (the series and
study indexes, ``medsearch.storage.unit_index``) and ``filter_cache`` (the id sets of recent filters,
``medsearch.storage.filters``) and ``reports`` (``medsearch.storage.reports``), each safe to share between threads."""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medsearch.errors import ModelMismatch, StoreError, StoreLocked
from medsearch.storage.database import make_engine, make_sessions
from medsearch.storage.filters import FilterCache
from medsearch.storage.index_choice import IndexType
from medsearch.storage.model_record import ModelRecord as ModelRecord  # re-exported: most callers import it from here
from medsearch.storage.models import Image, Precision, StoreInfo, utcnow
from medsearch.storage.reports import ReportStore
from medsearch.storage.unit_index import UnitIndexes
from medsearch.storage.vector_index import VectorIndex
from sqlalchemy import func, select
from sqlalchemy.orm import Session

SCHEMA_VERSION = 1
DB_FILE = "medsearch.db"
LOCK_FILE = "write.lock"
SECRET_FILE = "patient-key.secret"


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
        self.vectors = VectorIndex(directory, self.engine, self._sessions, writable)
        self.unit_vectors = UnitIndexes(directory, self._sessions)
        self.filter_cache = FilterCache()
        self.reports = ReportStore(self._sessions)

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
            self.vectors.close()
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
        """What produced the store's vectors, or None for an empty store."""
        info = self.info()
        return None if info is None else info.model_record()

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

    # -- generations -----------------------------------------------------------------------------

    def generation(self) -> int:
        info = self.info()
        return info.generation if info else 0

    def image_count(self) -> int:
        """How many vectors the database holds."""
        with self.read_session() as session:
            return session.scalar(select(func.count()).select_from(Image)) or 0

    def bump_generation(self, session: Session) -> int:
        """Inside a write transaction: the new generation for the rows it writes."""
        info = session.get(StoreInfo, 1, with_for_update=True)
        if info is None:
            raise StoreError("The store has no model record; bind_model first.")
        info.generation += 1
        info.updated_at = utcnow()
        return info.generation
