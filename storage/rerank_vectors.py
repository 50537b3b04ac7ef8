"""The re-rank vectors an ``ivf-pq`` index serves: its vector file (``medsearch.storage.vector_file``,
memory-mapped) with the rows deleted since marked dead, and the rows added since held in memory (in the
file's row type: int8 rows coded with the file's quantizer).

Changed only by the holder of ``VectorIndex``'s lock taken alone; searches read it under the lock shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.storage import snapshot, vector_file, vectors
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.index_choice import IndexType
from medsearch.storage.row_quantizer import FIT_SAMPLE, QuantizedRows, Quantizer
from medsearch.storage.vector_file import VectorFile, VectorFileError


class RerankVectors:
    """Rows of ids: a base file (or none) and the rows added after it, in the file's row type."""

    def __init__(self, dim: int, base: VectorFile | None = None, live_ids: np.ndarray | None = None) -> None:
        """``live_ids``: the ids of the base file still served (default: all of them)."""
        self.dim = dim
        self.base = base
        self.quantizer = base.quantizer if base is not None else None
        self.dtype = base.dtype if base is not None else np.dtype("<f4")
        held = base.ids if base is not None else np.empty(0, np.int64)
        self.live = np.ones(len(held), dtype=bool) if live_ids is None else np.isin(held, live_ids)
        self._new_ids = np.empty(0, dtype=np.int64)
        self._new_rows = np.empty((0, dim), dtype=self.dtype)
        self._new_count = 0

    @classmethod
    def opened(cls, path: Path, dim: int, sha256: str, index_ids: np.ndarray) -> RerankVectors:
        """The file at ``path`` serving ``index_ids`` (its other rows dead). Raises VectorFileError when the
        file is damaged or lacks one of ``index_ids``."""
        base = VectorFile(path, dim, sha256)
        index_ids = np.unique(np.asarray(index_ids, dtype=np.int64))
        _places, found = base.positions(index_ids)
        if not found.all():
            raise VectorFileError(f"{path.name} lacks {int((~found).sum())} of the index's vectors")
        return cls(dim, base, index_ids)

    # -- reading ---------------------------------------------------------------------------------

    def read(self, ids: np.ndarray) -> np.ndarray:
        """(n, dim) float32 rows of int64 ``ids`` in their order (int8 rows decoded); zeros for an id not
        served."""
        rows, served = self._gathered(np.asarray(ids, dtype=np.int64))
        out = self.quantizer.decode(rows) if self.quantizer is not None else as_float32(rows)
        if not served.all():
            out[~served] = 0
        return out

    def for_rerank(self, ids: np.ndarray) -> np.ndarray | QuantizedRows:
        """The rows of int64 ``ids`` as the re-rank scores them (``medsearch.storage.reranked``): int8 rows
        as their codes (scored without decoding), float rows as ``read`` gives them."""
        if self.quantizer is None:
            return self.read(ids)
        rows, served = self._gathered(np.asarray(ids, dtype=np.int64))
        return QuantizedRows(rows, self.quantizer, served)

    def _gathered(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """((n, dim) rows of ``ids`` in the file's type, which are served): one gather from the file in
        every query's case between snapshots."""
        if self.base is not None:
            places, found = self.base.positions(ids)
            found &= self.live[places]
            if self._new_count == 0 and found.all():
                return self.base.rows[places], found
        out = np.zeros((len(ids), self.dim), dtype=self.dtype)
        served = np.zeros(len(ids), dtype=bool)
        if self.base is not None and found.any():
            order = np.flatnonzero(found)
            by_place = np.argsort(places[order], kind="stable")  # in file order: fewer page jumps
            out[order[by_place]] = self.base.rows[places[order][by_place]]
            served |= found
        if self._new_count:
            new_ids = self._new_ids[: self._new_count]
            places = np.minimum(np.searchsorted(new_ids, ids), self._new_count - 1)
            found = new_ids[places] == ids
            out[found] = self._new_rows[places[found]]
            served |= found
        return out, served

    def count(self) -> int:
        """How many ids are served."""
        return int(self.live.sum()) + self._new_count

    def held_ids(self) -> np.ndarray:
        """The sorted int64 ids served."""
        base = self.base.ids[self.live] if self.base is not None else np.empty(0, np.int64)
        return np.union1d(base, self._new_ids[: self._new_count])

    # -- changing (the lock taken alone) -----------------------------------------------------------

    def add(self, ids: np.ndarray, rows: np.ndarray) -> None:
        """Serve (n, dim) ``rows`` under int64 ``ids``, replacing rows those ids had."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        self.remove(ids)
        order = np.argsort(ids, kind="stable")
        ids, rows = ids[order], np.asarray(rows)[order]
        if self.quantizer is not None:
            rows = self.quantizer.encode(rows)
        needed = self._new_count + len(ids)
        if needed > len(self._new_ids):
            size = max(needed, 2 * len(self._new_ids), 1024)
            self._new_ids = np.resize(self._new_ids, size)
            grown = np.empty((size, self.dim), dtype=self.dtype)
            grown[: self._new_count] = self._new_rows[: self._new_count]
            self._new_rows = grown
        at = self._new_count
        self._new_ids[at:needed], self._new_rows[at:needed] = ids, rows
        self._new_count = needed
        if at and ids[0] <= self._new_ids[at - 1]:  # not above the ids held: sort them again
            keep = np.argsort(self._new_ids[:needed], kind="stable")
            self._new_ids[:needed], self._new_rows[:needed] = self._new_ids[keep], self._new_rows[keep]

    def remove(self, ids: np.ndarray) -> None:
        """Stop serving ``ids`` (ids not served are ignored)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if self.base is not None and len(self.base.ids):
            places, found = self.base.positions(ids)
            self.live[places[found]] = False
        if self._new_count:
            keep = ~np.isin(self._new_ids[: self._new_count], ids)
            if not keep.all():
                count = int(keep.sum())
                self._new_ids[:count] = self._new_ids[: self._new_count][keep]
                self._new_rows[:count] = self._new_rows[: self._new_count][keep]
                self._new_count = count

    # -- writing -----------------------------------------------------------------------------------

    def needs_writing(self) -> bool:
        """Whether the base file is missing, lacks rows added since, or is past its share of dead rows."""
        if self.base is None or self._new_count:
            return True
        dead = len(self.live) - int(self.live.sum())
        return dead > vector_file.COMPACT_FRACTION * max(1, len(self.live))

    def written(self, directory: Path, dtype: str = "") -> RerankVectors:
        """Every row served, written to a new vector file in ``directory`` in rows of ``dtype`` (default
        this one's; int8 rows with this one's quantizer, or one fitted to a sample of its rows) and opened
        (this object is left as it was). Raises OSError when it cannot be written."""
        own = "int8" if self.quantizer is not None else str(self.dtype)
        if (dtype or own) == own:  # copied as stored: int8 codes are not decoded and coded again
            return built(directory, self.dim, self._in_order(stored=True), own, self.quantizer)
        quantizer = Quantizer.fitted(self.read(sample_ids(self.held_ids())), self.dim) if dtype == "int8" else None
        return built(directory, self.dim, self._in_order(stored=False), dtype, quantizer)

    def _in_order(self, stored: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, rows) chunks of every row served, in increasing id order: the rows as this object stores
        them (``stored``), else as float32."""
        ids = self.held_ids()
        for start in range(0, len(ids), vector_file.WRITE_CHUNK):
            chunk = ids[start : start + vector_file.WRITE_CHUNK]
            yield chunk, self._gathered(chunk)[0] if stored else self.read(chunk)


def sample_ids(ids: np.ndarray, size: int = FIT_SAMPLE) -> np.ndarray:
    """At most ``size`` of the sorted ``ids``, drawn at random, sorted."""
    if len(ids) <= size:
        return ids
    return np.sort(np.random.default_rng(0).choice(ids, size, replace=False))


Loaded = tuple[Any, snapshot.Manifest, "RerankVectors | None"]


def load_snapshot(directory: Path, dim: int, revision: str) -> Loaded | None:
    """The snapshot (``medsearch.storage.snapshot.load_snapshot``) and, of an ivf-pq index, its vector file
    (None when missing, damaged or lacking rows of the index: the store rebuilds it). A snapshot replaced
    while its vector file was being opened is read again, once."""
    for attempt in range(2):
        loaded = snapshot.load_snapshot(directory, dim, revision)
        if loaded is None or index_type_of(loaded[0]) is not IndexType.IVF_PQ:
            return None if loaded is None else (*loaded, None)
        index, manifest = loaded
        try:
            if not manifest.vectors_file:
                return index, manifest, None
            return index, manifest, RerankVectors.opened(directory / manifest.vectors_file, dim,
                                                         manifest.vectors_sha256, vectors.ids(index))
        except VectorFileError:
            if attempt or snapshot.read_manifest(directory) == manifest:
                return index, manifest, None
    return None


def file_problem(directory: Path, manifest: snapshot.Manifest, dim: int, index: Any) -> str | None:
    """What is wrong with the vector file of a loaded ivf-pq snapshot (every byte is read and checked
    against the manifest's checksum), or None when it is sound, or none is kept (another kind of index, or
    rows too many for the memory: ``vector_file.fits_memory``)."""
    if index_type_of(index) is not IndexType.IVF_PQ:
        return None
    if not manifest.vectors_file and not vector_file.fits_memory(int(index.ntotal), dim):
        return None  # too large for the page cache: the re-rank reads the database by design
    if not manifest.vectors_file:
        return "the ivf-pq snapshot has no vector file (written by an earlier version): its re-rank reads the database"
    path = directory / manifest.vectors_file
    try:
        if vector_file.file_sha256(path) != manifest.vectors_sha256:
            return f"the vector file {path.name} does not match its checksum"
        RerankVectors.opened(path, dim, manifest.vectors_sha256, vectors.ids(index))
    except (OSError, VectorFileError) as error:
        return f"the vector file is missing or damaged ({error})"
    return None


def built(directory: Path, dim: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]], dtype: str = "",
          quantizer: Quantizer | None = None) -> RerankVectors:
    """The rows of ``chunks`` ((ids, float rows), increasing ids) written to a new vector file in
    ``directory`` in rows of ``dtype`` (int8 rows with ``quantizer``) and opened. Raises OSError when it
    cannot be written, ValueError for ids out of order."""
    name, digest = vector_file.write_file(directory, dim, chunks, dtype, quantizer)
    return RerankVectors(dim, VectorFile(directory / name, dim, digest))


def as_float32(rows: np.ndarray) -> np.ndarray:
    """(n, dim) float16 or float32 rows as float32; float16 through FAISS's decoder (a little faster than
    numpy's conversion here)."""
    if rows.dtype.itemsize == 4:
        return np.asarray(rows, dtype=np.float32)
    import faiss

    rows = np.ascontiguousarray(rows)
    decoder = faiss.ScalarQuantizer(rows.shape[1], faiss.ScalarQuantizer.QT_fp16)
    return decoder.decode(rows.view(np.uint8))
