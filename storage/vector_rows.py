"""Stored vectors read by id, for the re-rank of every ``ivf-pq`` query (``storage.reranked``).

A query re-scores a few hundred rows spread over the whole table. Where SQLite reads them through its
memory map (``storage.database.MMAP_BYTES``: the whole file, up to 2 GB here) they are in the page cache as
a rule, and one connection reads 500 in ~3 ms: threads only add their hand-offs (300 k images: 4.5 ms a
query on one, 9 ms on eight). A database past the map (ten million images: 26 GB, 77 % of it in the page
cache of a 24 GB machine) is read with ``pread``, and a quarter of those rows are disk reads, ~0.1 ms apiece
one after another: split over ``THREADS`` connections, the disk serves them side by side (fresh queries,
p50: one connection 50 ms, two 44, four 39, eight 39; the GIL is released while SQLite reads). Each
statement lists the ids as integer literals rendered here, through the driver's own cursor: the plainest
statement there is, as the cost per row is what counts.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from storage import vector_codec
from storage.models import Image

THREADS = 4
ALONE_MAX = 64
"""Up to this many ids are read on one connection (threads cost more than they save)."""


class VectorRows:
    """Reads (id, stored vector) rows of ``engine``'s images table; ``close()`` stops its threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._threads: ThreadPoolExecutor | None = None
        self._mapped: int | None = None  # bytes of a SQLite file its connections map (None: not asked yet)

    def read(self, ids: np.ndarray, dim: int) -> np.ndarray:
        """(n, dim) float32 stored vectors of int64 ``ids``, in their order; a row of zeros for an id no
        longer stored."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) <= ALONE_MAX or self._all_mapped():
            rows = self._rows(ids)
        else:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="vector-rows")
            parts = np.array_split(np.sort(ids), THREADS)
            rows = [row for found in self._threads.map(self._rows, parts) for row in found]
        out = np.zeros((len(ids), dim), dtype=np.float32)
        if rows:
            found_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            order = np.argsort(ids, kind="stable")
            out[order[np.searchsorted(ids, found_ids, sorter=order)]] = vector_codec.decode_many(r[1] for r in rows)
        return out

    def _rows(self, ids: np.ndarray) -> list[Any]:
        from storage.queries import chunks  # storage.queries builds on the store, which builds on this

        rows: list[Any] = []
        with self.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for chunk in chunks(ids.tolist()):
                    listed = ",".join(str(int(i)) for i in chunk)
                    cursor.execute(f"SELECT id, embedding FROM {Image.__tablename__} WHERE id IN ({listed})")
                    rows += cursor.fetchall()
            finally:
                cursor.close()
        return rows

    def _all_mapped(self) -> bool:
        """Whether the database is a SQLite file no larger than what its connections memory-map."""
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return False
        if self._mapped is None:
            with self.engine.connect() as connection:
                self._mapped = int(connection.execute(text("PRAGMA mmap_size")).scalar() or 0)
        try:
            return os.path.getsize(path) <= self._mapped
        except OSError:
            return False

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None
