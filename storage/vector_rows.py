"""Stored vectors read by id, for the re-rank of every ``ivf-pq`` query (``medsearch.storage.reranked``).

A query re-scores a few hundred rows spread over the whole vectors table (``image_vectors``, read before
the images rows of an older store). A database that the page cache can hold (up to ``CACHED_SHARE`` of the
machine's memory) is read on one connection: 500 rows in ~3 ms, where threads only add their hand-offs
(1 M images, p50 7.0 ms a query on one connection, 8.8 ms on four). A larger one is read over ``THREADS``
connections, so that rows not in the page cache come from the disk side by side (~0.3 ms each here; the
GIL is released while SQLite reads). Ten million images: the database is 26 GB, the vectors table 17.5 GB
of it, which a 24 GB machine's page cache holds once read (``warm``: what a server does at start); then a
query re-ranks in 8-10 ms on either path (fresh queries, p50: one connection 15.0 ms, four 15.3). With the
vectors inside the images rows, as stores before kept them, the cache held 72-81 % of those rows and a
query took 40-56 ms. Each statement lists the ids as integer literals rendered here, through the driver's
own cursor: the plainest statement there is, as the cost per row is what counts. (Memory-mapped reads were
1.5-3 ms faster at 1 M, but every connection's map counts in the process's resident memory: 4.8 GB
reported for a 0.3 GB process.)
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from medsearch.storage import vector_codec
from medsearch.storage.chunking import chunks
from medsearch.storage.models import Image, ImageVector
from sqlalchemy import Engine, func, select

THREADS = 4
ALONE_MAX = 64
"""Up to this many ids are read on one connection (threads cost more than they save)."""
CACHED_SHARE = 0.5
"""A SQLite database up to this share of the machine's memory is taken to be in the page cache."""
WARM_SHARE = 0.9
"""``warm`` reads the vectors table when it takes at most this share of the memory available."""
WARM_CHUNK = 20_000


class VectorRows:
    """Reads (id, stored vector) rows of ``engine``'s images table; ``close()`` stops its threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._threads: ThreadPoolExecutor | None = None
        self._cached_limit = int(CACHED_SHARE * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))

    def read(self, ids: np.ndarray, dim: int) -> np.ndarray:
        """(n, dim) float32 stored vectors of int64 ``ids``, in their order; a row of zeros for an id no
        longer stored."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) <= ALONE_MAX or self._in_page_cache():
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
        """(id, blob) rows of ``ids``: from ``image_vectors``, and the ids not there from an older store's
        own column (an empty blob there once moved)."""
        with self.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                rows = _select(cursor, f"SELECT id, embedding FROM {ImageVector.__tablename__} WHERE id IN", ids)
                if len(rows) < len(ids):
                    missing = np.setdiff1d(ids, np.fromiter((row[0] for row in rows), dtype=np.int64))
                    rows += _select(cursor, f"SELECT id, embedding FROM {Image.__tablename__} "
                                    "WHERE length(embedding) > 0 AND id IN", missing)
            finally:
                cursor.close()
        return rows

    def warm(self, stop: threading.Event, dim: int) -> int:
        """Read the vectors table once, in id order, so that the page cache holds it: the re-rank of every
        query reads a few hundred of its rows at random, ~0.3 ms each from disk (10 M images, fresh
        queries: p50 27-31 ms before the table was read whole, 13-15 ms after). Reads nothing when the
        table would not fit in the memory available now (it would only push out other pages), nor from
        PostgreSQL (its server keeps its own cache). Returns the rows read; stops between chunks once
        ``stop`` is set."""
        if self.engine.dialect.name != "sqlite":
            return 0
        with self.engine.connect() as connection:
            top = connection.scalar(select(func.max(ImageVector.id))) or 0  # at least the rows there are
            row_bytes = len(vector_codec.encode(np.zeros(dim, dtype=np.float32)))
            if not top or top * row_bytes > WARM_SHARE * available_memory():
                return 0
            cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            read, last = 0, 0
            try:
                while not stop.is_set() and last < top:
                    cursor.execute(f"SELECT count(length(embedding)) FROM {ImageVector.__tablename__} "
                                   f"WHERE id > {last} AND id <= {last + WARM_CHUNK}")
                    (rows,) = cursor.fetchone() or (0,)
                    read, last = read + int(rows), last + WARM_CHUNK
            finally:
                cursor.close()
        return read

    def _in_page_cache(self) -> bool:
        """Whether the database is a SQLite file small enough for the page cache to hold it."""
        path = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not path or path == ":memory:":
            return False
        try:
            return os.path.getsize(path) <= self._cached_limit
        except OSError:
            return False

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown()
            self._threads = None


def _select(cursor: Any, statement: str, ids: np.ndarray) -> list[Any]:
    """The rows of ``statement`` ending in ``id IN``, over ``ids`` in chunks of integer literals."""
    rows: list[Any] = []
    for chunk in chunks(ids.tolist()):
        cursor.execute(f"{statement} ({','.join(str(int(i)) for i in chunk)})")
        rows += cursor.fetchall()
    return rows


def available_memory() -> int:
    """Bytes of memory available now (Linux's MemAvailable: free plus reclaimable cache); 0 elsewhere."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
