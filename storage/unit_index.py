"""The in-memory FAISS index of each unit kind's vectors (series, study; ids = ``units.id``), held by the
store (``store.unit_vectors``) and caught up by generation like the image index: built on first use,
then the units stamped after its generation are replayed (removed, and added again when they still have
images). Threads share it without a lock of their own (searches shared, catch-ups alone)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.errors import StoreError
from medsearch.storage import vector_codec, vectors
from medsearch.storage.models import Image, StoreInfo
from medsearch.storage.rwlock import ReadWriteLock
from medsearch.storage.unit_models import Unit
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

KINDS = {"series": "series_instance_uid", "study": "study_instance_uid"}
"""Each unit kind and the image column that names its members."""

UnitKey = tuple[str, str]
"""(kind, uid)."""


@dataclass
class HeldIndex:
    """One kind's FAISS index and the generation it is caught up to."""

    index: Any
    generation: int


class UnitIndexes:
    """The unit indexes of the database behind ``sessions``, by kind."""

    def __init__(self, directory: Path, sessions: sessionmaker[Session]) -> None:
        self.directory = directory
        self._sessions = sessions
        self._held: dict[str, HeldIndex] = {}
        self._lock = ReadWriteLock()

    def search(self, kind: str, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` units of ``kind`` by cosine of their mean vectors (``medsearch.storage.vectors.search``),
        among ``allowed_ids`` (unit ids) when given. Raises StoreError as ``load`` does."""
        self.load(kind)
        with self._lock.reading():
            return vectors.search(self._held[kind].index, queries, k, allowed_ids)

    def ids(self, kind: str) -> np.ndarray:
        """The int64 unit ids a search of ``kind`` can return (caught up first)."""
        self.load(kind)
        with self._lock.reading():
            return vectors.ids(self._held[kind].index)

    def count(self, kind: str) -> int:
        """How many units of ``kind`` a search can return (caught up first)."""
        self.load(kind)
        with self._lock.reading():
            return vectors.live_count(self._held[kind].index)

    def index(self, kind: str) -> Any:
        """The FAISS index of ``kind`` itself, caught up, for inspection (tests): search through ``search``."""
        self.load(kind)
        return self._held[kind].index

    def clear(self) -> None:
        """Forget every unit index (the next use builds it whole)."""
        with self._lock.writing():
            self._held.clear()

    def load(self, kind: str) -> None:
        """Build or catch up the index of ``kind``. Raises StoreError when the store is empty, or when the
        units of a store made before them were never built (`medsearch check --repair` builds them)."""
        with self._lock.writing():
            if not self._caught_up(kind):
                self._held.pop(kind, None)  # out of step: build it whole from the table
                self._caught_up(kind)

    def _caught_up(self, kind: str) -> bool:
        """Replay the units of ``kind`` stamped after the held index's generation (under the lock taken
        alone); False when the result does not hold every live unit."""
        held = self._held.get(kind)
        with self._sessions() as session, session.begin():
            info = session.get(StoreInfo, 1)
            if info is None:
                raise StoreError(f"The store at {self.directory} is empty; index a folder first.")
            dim, generation = info.dim, info.generation
            if held is not None and held.generation == generation:
                return True
            since = -1 if held is None else held.generation
            changed = select(Unit.id, Unit.embedding).where(Unit.kind == kind, Unit.generation > since)
            rows = session.execute(changed).all()
            live = session.scalar(select(func.count()).select_from(Unit).where(Unit.kind == kind, Unit.size > 0)) or 0
            if held is None and live == 0 and missing_units(session):
                raise StoreError(f"The series and study vectors of {self.directory} are not built yet; run "
                                 f"`medsearch check --repair --store {self.directory}` once.")
        index = vectors.new_index(dim) if held is None else held.index
        vectors.remove(index, np.asarray([r[0] for r in rows], dtype=np.int64))
        kept = [(i, blob) for i, blob in rows if blob is not None]
        if kept:
            vectors.add(index, np.asarray([i for i, _b in kept], dtype=np.int64),
                        vector_codec.decode_many(b for _i, b in kept))
        self._held[kind] = HeldIndex(index, generation)
        return vectors.live_count(index) == live


def missing_units(session: Session) -> set[UnitKey]:
    """Units that images name but the table does not have (a store made before units were kept)."""
    known = {(kind, uid) for kind, uid in session.execute(select(Unit.kind, Unit.uid).where(Unit.size > 0))}
    named: set[UnitKey] = set()
    for kind, column in KINDS.items():
        values = session.scalars(select(getattr(Image, column)).where(getattr(Image, column).is_not(None)).distinct())
        named |= {(kind, str(v)) for v in values}
    return named - known
