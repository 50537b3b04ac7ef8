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

The rows' type is chosen by size (``row_type``): float32 while the page cache can hold them, else one
byte per component (``int8``: ``medsearch.storage.row_quantizer``, a quarter of the size, scored without
decoding), else no file.

Layout: a 64-byte header (``MAGIC``, dimension, bytes per component, row count, encoding, offset of the
rows, sha256 of the quantizer block) padded to ``ALIGN``; for int8 rows the quantizer block (per-dimension
offsets and steps, float32) padded to ``ALIGN``; the rows (float16, float32 or uint8 codes, little-endian),
then their int64 ids (sorted, unique): written in one pass without knowing the count first, the header
last. Files of the earlier header (zeros after the row count) are float rows at ``ALIGN``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from medsearch.storage import snapshot
from medsearch.storage.row_quantizer import Quantizer

MAGIC = b"MSVEC001"
HEADER = struct.Struct("<8sIIQII32s")  # magic, dimension, bytes per component, rows, encoding, rows' offset, sha256
FLOAT, INT8 = 0, 1  # encodings: float rows (2 or 4 bytes a component); uint8 codes of per-dimension steps
HEADER_SIZE = 64
ALIGN = 4096
TEMPORARY = snapshot.VECTORS_TEMPORARY
ROW_DTYPE = "float32"
"""The rows' type in files written now while they fit ``MEMORY_SHARE``: ``float32`` (4.6 KB a vector at
d = 1152), the stored vectors exactly as decoded, so a re-rank scores as one from the database does;
``float16`` (2.3 KB) halves the file but converting 500 rows cost 3-4 ms on this 2-core CPU (numpy and
FAISS alike), 10x the read itself; ``int8`` (1.2 KB) is what larger stores get (``row_type``;
``benchmarks/bench_scale.py --rerank`` measures all three)."""
MEMORY_SHARE = 0.5
"""A store keeps a vector file only while its rows take at most this share of the machine's memory: the
re-rank reads them at random, so the page cache must hold them (10 M x 1152 is 46 GB in float32, 11.5 GB
in int8; its 12-bit rows in the database, 17.5 GB, serve a query in 13-16 ms on a 24 GB machine)."""
COMPACT_FRACTION = 0.25
WRITE_CHUNK = 8192


class VectorFileError(Exception):
    """A vector file that is missing, damaged or not of this program (the store rebuilds it)."""


def memory_bytes() -> int:
    """The machine's memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def row_type(count: int, dim: int) -> str | None:
    """The rows' type of a file of ``count`` rows: ``ROW_DTYPE`` while those take at most ``MEMORY_SHARE``
    of the memory, else ``int8`` while those do, else None (no file: the re-rank reads the database)."""
    for kind in dict.fromkeys((ROW_DTYPE, "int8")):
        if count * dim * _width(kind) <= MEMORY_SHARE * memory_bytes():
            return kind
    return None


def fits_memory(count: int, dim: int) -> bool:
    """Whether a store of ``count`` rows keeps a vector file (``row_type``)."""
    return row_type(count, dim) is not None


def _width(kind: str) -> int:
    return 1 if kind == "int8" else np.dtype(kind).itemsize


def write_file(directory: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]],
               dtype: str = "", quantizer: Quantizer | None = None) -> tuple[str, str]:
    """Write the rows given as (ids, (n, dim) float rows) chunks in increasing id order to a new
    content-named file in ``directory``, in rows of ``dtype`` (float32, float16, or int8 with
    ``quantizer``, which it needs; int8 rows may come as that quantizer's uint8 codes); returns (its name,
    its sha256). Raises OSError when it cannot be written (no temporary file is left) and ValueError when
    the ids are not strictly increasing."""
    dtype = dtype or ROW_DTYPE
    if (dtype == "int8") != (quantizer is not None):
        raise ValueError("int8 rows, and only they, are written with a quantizer")
    kind = np.dtype("uint8" if dtype == "int8" else dtype).newbyteorder("<")
    tmp = directory / f"{TEMPORARY}{os.getpid()}"
    try:
        digest = _write(tmp, dim, chunks, kind, quantizer)
        name = f"vectors.{digest[:16]}.vec"
        os.replace(tmp, directory / name)
    finally:
        tmp.unlink(missing_ok=True)
    return name, digest


def _write(path: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]], kind: np.dtype,
           quantizer: Quantizer | None) -> str:
    """``write_file``'s file at ``path``: the quantizer block, the rows as they come, then the ids, then the
    header; fsynced. Returns the sha256 (of the header and of the hashes of the rows and of the ids)."""
    rows_hash = hashlib.sha256()
    parts: list[np.ndarray] = []
    last = np.iinfo(np.int64).min
    block = quantizer.to_bytes() if quantizer is not None else b""
    start = ALIGN + _padded(len(block))
    with open(path, "wb") as handle:
        handle.seek(ALIGN)
        handle.write(block)
        handle.truncate(start)
        handle.seek(start)
        for ids, rows in chunks:
            ids = np.ascontiguousarray(ids, dtype="<i8")
            if len(ids) == 0:
                continue
            if ids[0] <= last or (len(ids) > 1 and (np.diff(ids) <= 0).any()):
                raise ValueError("vector file rows must be given once each, in increasing id order")
            rows = np.asarray(rows)
            rows = quantizer.encode(rows) if quantizer is not None and rows.dtype != np.uint8 else rows
            data = np.ascontiguousarray(rows, dtype=kind).reshape(len(ids), dim).tobytes()
            handle.write(data)
            rows_hash.update(data)
            parts.append(ids)
            last = int(ids[-1])
        every = np.concatenate(parts) if parts else np.empty(0, dtype="<i8")
        handle.write(every.tobytes())
        header = HEADER.pack(MAGIC, dim, kind.itemsize, len(every), INT8 if block else FLOAT, start,
                             hashlib.sha256(block).digest() if block else bytes(32))
        handle.seek(0)
        handle.write(header)
        handle.flush()
        os.fsync(handle.fileno())
    return _digest(header, rows_hash, hashlib.sha256(every.tobytes()))


def _digest(header: bytes, rows_hash: Any, ids_hash: Any) -> str:
    return hashlib.sha256(header + rows_hash.digest() + ids_hash.digest()).hexdigest()


def _padded(size: int) -> int:
    return -(-size // ALIGN) * ALIGN


def _size(dim: int, width: int, count: int, start: int) -> int:
    """The bytes of a file of ``count`` rows from ``start``."""
    return start + count * (dim * width + 8)


class Header(NamedTuple):
    """A vector file's header; ``rows``: how many it holds, ``start``: where they begin."""

    dim: int
    width: int
    rows: int
    encoding: int
    start: int
    block_sha256: bytes

    @classmethod
    def read(cls, handle: Any, name: str) -> Header:
        """The header at the start of the open file ``handle``. Raises VectorFileError when it is not a
        vector file's."""
        try:
            magic, dim, width, count, encoding, start, block = HEADER.unpack(handle.read(HEADER_SIZE)[: HEADER.size])
        except struct.error:
            raise VectorFileError(f"{name} is not a vector file") from None
        start = start or ALIGN  # a file of the earlier header: float rows at ALIGN
        kinds = {FLOAT: (2, 4), INT8: (1,)}
        if magic != MAGIC or width not in kinds.get(encoding, ()) or start % ALIGN or start < ALIGN:
            raise VectorFileError(f"{name} is not a vector file")
        if encoding == INT8 and start != ALIGN + _padded(8 * dim):
            raise VectorFileError(f"{name}: its quantizer block is not where its header says")
        return cls(dim, width, count, encoding, start, block)


class VectorFile:
    """An open vector file: ``ids`` (sorted int64, in memory), ``rows`` ((n, dim), memory-mapped, of
    ``dtype``) and of int8 rows their ``quantizer`` (None for float rows)."""

    def __init__(self, path: Path, dim: int, sha256: str) -> None:
        """``sha256``: what its manifest records (checked by ``medsearch check``, which reads every byte).
        Raises VectorFileError when the file is missing, of another dimension, not whole, or its quantizer
        block does not match its header."""
        self.path, self.name, self.sha256 = path, path.name, sha256
        try:
            with open(path, "rb") as handle:
                header = Header.read(handle, path.name)
                handle.seek(ALIGN)
                block = handle.read(8 * dim) if header.encoding == INT8 else b""
            size = path.stat().st_size
        except OSError as error:
            raise VectorFileError(f"{path.name}: {error}") from None
        if header.dim != dim:
            raise VectorFileError(f"{path.name} is not a vector file of {dim} components")
        count, width, start = header.rows, header.width, header.start
        if size != _size(dim, width, count, start):
            raise VectorFileError(f"{path.name} is {size} bytes, not the {count} rows its header says")
        self.quantizer: Quantizer | None = None
        if header.encoding == INT8:
            if hashlib.sha256(block).digest() != header.block_sha256:
                raise VectorFileError(f"{path.name}: its quantizer block does not match its header")
            self.quantizer = Quantizer.from_bytes(block, dim)
        kind = np.dtype({1: "u1", 2: "<f2", 4: "<f4"}[width])
        self.ids = np.fromfile(path, dtype="<i8", count=count, offset=start + count * dim * width).astype(np.int64)
        if count > 1 and not bool(np.all(self.ids[1:] > self.ids[:-1])):
            raise VectorFileError(f"{path.name}: its ids are not in increasing order")
        # a plain array over the map: indexing a np.memmap costs twice as much
        self.rows: np.ndarray = (np.asarray(np.memmap(path, dtype=kind, mode="r", offset=start, shape=(count, dim)))
                                 if count else np.empty((0, dim), dtype=kind))
        self.dtype = kind

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row positions, found mask) of int64 ``ids`` (a position is meaningless where not found)."""
        if len(self.ids) == 0:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        places = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return places, self.ids[places] == ids


def file_sha256(path: Path) -> str:
    """The sha256 ``write_file`` returned for the file at ``path`` (every byte of its rows and ids is read;
    the quantizer block is covered by its checksum in the header). Raises OSError and VectorFileError (not
    a vector file)."""
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_SIZE)
        handle.seek(0)
        header = Header.read(handle, path.name)
        handle.seek(header.start)
        rows_hash, left = hashlib.sha256(), header.rows * header.dim * header.width
        while left > 0 and (chunk := handle.read(min(left, 1 << 22))):
            rows_hash.update(chunk)
            left -= len(chunk)
        return _digest(raw, rows_hash, hashlib.sha256(handle.read(8 * header.rows)))


def warm(path: Path, stop: Any) -> int:
    """Read the file's rows once so that the page cache holds them (``stop``: a threading.Event checked
    between chunks); returns how many rows were read whole. Raises OSError and VectorFileError."""
    with open(path, "rb") as handle:
        header = Header.read(handle, path.name)
        handle.seek(header.start)
        read, total, row = 0, header.rows * header.dim * header.width, header.dim * header.width
        while read < total and not stop.is_set() and (chunk := handle.read(min(1 << 24, total - read))):
            read += len(chunk)
    return read // max(1, row)
