"""The re-rank vectors of an ``ivf-pq`` index: a fixed-width, memory-mapped file beside the FAISS snapshot.

A query re-scores ~500 candidates with their stored vectors; read from SQLite that took 98 % of a query
(7-8 ms at 100 k-1 M). Here the rows lie in id order in ``vectors.<sha256[:16]>.vec``, read through a
memory map (page cache, not the process's heap): a row is found by a binary search of the sorted ids, and
500 of them cost well under a millisecond once cached (``benchmarks/bench_scale.py``).

The file is derived data, written under the FAISS snapshot's rules (``medsearch.storage.snapshot``): a
temporary file, fsync, renamed to its content name, and named by the manifest, which is replaced last; so
a kill leaves the old manifest naming its own whole file. It holds the ids it was written with; on load
they must cover every id of the FAISS index of the same manifest (ids deleted since are marked dead in
memory), else it is not used and the store rebuilds it from the database (``medsearch check`` reports it).
Rows added after the file was written are held in memory until the next snapshot writes them; a file with
more than ``COMPACT_FRACTION`` dead rows is written again (compacted) by the next snapshot.

Layout: a 64-byte header (``MAGIC``, dimension, bytes per component, row count) padded to ``ALIGN``, the
rows (float16 or float32, little-endian), then their int64 ids (sorted, unique): written in one pass
without knowing the count first, the header last.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.storage import snapshot

MAGIC = b"MSVEC001"
HEADER = struct.Struct("<8sIIQ")  # magic, dimension, bytes per component, rows
HEADER_SIZE = 64
ALIGN = 4096
TEMPORARY = snapshot.VECTORS_TEMPORARY
ROW_DTYPE = "float32"
"""The rows' type in files written now: ``float32`` (4.6 KB a vector at d = 1152), the stored vectors
exactly as decoded, so a re-rank scores as one from the database does; ``float16`` (2.3 KB) halves the file
but converting 500 rows cost 3-4 ms on this 2-core CPU (numpy and FAISS alike), 10x the read itself
(``benchmarks/bench_scale.py --rerank`` measures both)."""
MEMORY_SHARE = 0.5
"""A store keeps a vector file only while its rows take at most this share of the machine's memory: the
re-rank reads them at random, so the page cache must hold them (10 M x 1152 float32 is 46 GB; its
12-bit rows in the database, 17.5 GB, serve a query in 13-16 ms on a 24 GB machine)."""
COMPACT_FRACTION = 0.25
WRITE_CHUNK = 8192


class VectorFileError(Exception):
    """A vector file that is missing, damaged or not of this program (the store rebuilds it)."""


def fits_memory(count: int, dim: int) -> bool:
    """Whether a file of ``count`` rows of ``ROW_DTYPE`` stays within ``MEMORY_SHARE`` of the memory."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return count * dim * np.dtype(ROW_DTYPE).itemsize <= MEMORY_SHARE * memory


def write_file(directory: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]],
               dtype: str = "") -> tuple[str, str]:
    """Write the rows given as (ids, (n, dim) float rows) chunks in increasing id order to a new
    content-named file in ``directory``; returns (its name, its sha256). Raises OSError when it cannot be
    written (no temporary file is left) and ValueError when the ids are not strictly increasing."""
    kind = np.dtype(dtype or ROW_DTYPE).newbyteorder("<")
    tmp = directory / f"{TEMPORARY}{os.getpid()}"
    try:
        digest = _write(tmp, dim, chunks, kind)
        name = f"vectors.{digest[:16]}.vec"
        os.replace(tmp, directory / name)
    finally:
        tmp.unlink(missing_ok=True)
    return name, digest


def _write(path: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]], kind: np.dtype) -> str:
    """``write_file``'s file at ``path``: the rows as they come, then the ids, then the header; fsynced.
    Returns the sha256 (of the header and of the hashes of the rows and of the ids)."""
    rows_hash = hashlib.sha256()
    parts: list[np.ndarray] = []
    last = np.iinfo(np.int64).min
    with open(path, "wb") as handle:
        handle.truncate(ALIGN)
        handle.seek(ALIGN)
        for ids, rows in chunks:
            ids = np.ascontiguousarray(ids, dtype="<i8")
            if len(ids) == 0:
                continue
            if ids[0] <= last or (len(ids) > 1 and (np.diff(ids) <= 0).any()):
                raise ValueError("vector file rows must be given once each, in increasing id order")
            data = np.ascontiguousarray(rows, dtype=kind).reshape(len(ids), dim).tobytes()
            handle.write(data)
            rows_hash.update(data)
            parts.append(ids)
            last = int(ids[-1])
        every = np.concatenate(parts) if parts else np.empty(0, dtype="<i8")
        handle.write(every.tobytes())
        header = HEADER.pack(MAGIC, dim, kind.itemsize, len(every)).ljust(HEADER_SIZE, b"\0")
        handle.seek(0)
        handle.write(header)
        handle.flush()
        os.fsync(handle.fileno())
    return _digest(header, rows_hash, hashlib.sha256(every.tobytes()))


def _digest(header: bytes, rows_hash: Any, ids_hash: Any) -> str:
    return hashlib.sha256(header + rows_hash.digest() + ids_hash.digest()).hexdigest()


def _size(dim: int, width: int, count: int) -> int:
    """The bytes of a file of ``count`` rows."""
    return ALIGN + count * (dim * width + 8)


class VectorFile:
    """An open vector file: ``ids`` (sorted int64, in memory) and ``rows`` ((n, dim), memory-mapped)."""

    def __init__(self, path: Path, dim: int, sha256: str) -> None:
        """``sha256``: what its manifest records (checked by ``medsearch check``, which reads every byte).
        Raises VectorFileError when the file is missing, of another dimension, or not whole."""
        self.path, self.name, self.sha256 = path, path.name, sha256
        try:
            with open(path, "rb") as handle:
                magic, stored_dim, width, count = HEADER.unpack(handle.read(HEADER_SIZE)[: HEADER.size])
            size = path.stat().st_size
        except (OSError, struct.error) as error:
            raise VectorFileError(f"{path.name}: {error}") from None
        if magic != MAGIC or stored_dim != dim or width not in (2, 4):
            raise VectorFileError(f"{path.name} is not a vector file of {dim} components")
        if size != _size(dim, width, count):
            raise VectorFileError(f"{path.name} is {size} bytes, not the {count} rows its header says")
        kind = np.dtype("<f2" if width == 2 else "<f4")
        self.ids = np.fromfile(path, dtype="<i8", count=count, offset=ALIGN + count * dim * width).astype(np.int64)
        if count > 1 and not bool(np.all(self.ids[1:] > self.ids[:-1])):
            raise VectorFileError(f"{path.name}: its ids are not in increasing order")
        # a plain array over the map: indexing a np.memmap costs twice as much
        self.rows: np.ndarray = (np.asarray(np.memmap(path, dtype=kind, mode="r", offset=ALIGN, shape=(count, dim)))
                                 if count else np.empty((0, dim), dtype=kind))
        self.dtype = kind

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row positions, found mask) of int64 ``ids`` (a position is meaningless where not found)."""
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        places = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return places, self.ids[places] == ids


def file_sha256(path: Path) -> str:
    """The sha256 ``write_file`` returned for the file at ``path`` (every byte is read). Raises OSError
    and VectorFileError (not a vector file)."""
    with open(path, "rb") as handle:
        header = handle.read(HEADER_SIZE)
        try:
            _magic, dim, width, count = HEADER.unpack(header[: HEADER.size])
        except struct.error:
            raise VectorFileError(f"{path.name} is not a vector file") from None
        handle.seek(ALIGN)
        rows_hash, left = hashlib.sha256(), count * dim * width
        while left > 0 and (chunk := handle.read(min(left, 1 << 22))):
            rows_hash.update(chunk)
            left -= len(chunk)
        return _digest(header, rows_hash, hashlib.sha256(handle.read(8 * count)))


def warm(path: Path, stop: Any) -> int:
    """Read the file's rows once so that the page cache holds them (``stop``: a threading.Event checked
    between chunks); returns how many rows were read whole."""
    with open(path, "rb") as handle:
        _magic, dim, width, count = HEADER.unpack(handle.read(HEADER_SIZE)[: HEADER.size])
        handle.seek(ALIGN)
        read, total = 0, count * dim * width
        while read < total and not stop.is_set() and (chunk := handle.read(min(1 << 24, total - read))):
            read += len(chunk)
    return read // max(1, dim * width)
