"""FAISS's own calls, typed, shared by the plain search (``medsearch.storage.vectors``) and the ivf-pq
re-rank (``medsearch.storage.reranked``): the kind of an index, a search, and what a filtered search passes
FAISS (an ID selector, a bitmap or a hash set, in widened search parameters)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from medsearch.storage.index_choice import IndexType

TOMBSTONE = -1
"""The id of a removed HNSW node (never an image id; FAISS also pads missing results with -1)."""


def index_type_of(index: Any) -> IndexType:
    """The kind of an index made by ``new_index``."""
    import faiss

    if isinstance(index, faiss.IndexIVFPQFastScan):
        return IndexType.IVF_PQ
    if isinstance(index, faiss.IndexIVF):
        return IndexType.IVF_SQ8
    inner = faiss.downcast_index(index.index)
    return IndexType.HNSW if isinstance(inner, faiss.IndexHNSW) else IndexType.FLAT


def search_index(index: Any, queries: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's own search, typed: (scores (q, k) float32, ids (q, k) int64)."""
    scores, ids = index.search(queries, k, params=params) if params is not None else index.search(queries, k)
    return np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64)


def sorted_unique(ids: np.ndarray) -> np.ndarray:
    """``ids`` as sorted unique int64, without the cost of ``np.unique`` when they are so already (a filter's
    ids are: ``np.unique`` of 100 k took ~14 ms, for every query)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return ids
    found: np.ndarray = np.unique(ids)
    return found


def filtered_params(index: Any, allowed: np.ndarray, fraction: float, exhaustive: bool = False,
                     widest: float = 16.0) -> tuple[Any, Any]:
    """Search parameters carrying the ID selector (a wider search the more selective the filter, up to
    ``widest`` times the lists or graph breadth), and what the selector points into, which must stay alive
    while the parameters are used."""
    import faiss

    widen = min(widest, math.sqrt(1.0 / max(fraction, 1e-9)))
    params: Any
    if isinstance(index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = index.nlist if exhaustive else min(index.nlist, math.ceil(index.nprobe * widen))
    elif index_type_of(index) is IndexType.HNSW:
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        graph: Any = faiss.downcast_index(index.index)
        params.efSearch = math.ceil(graph.hnsw.efSearch * widen)
    else:
        params = faiss.SearchParameters()
    params.sel, keep = _selector(allowed)
    return params, keep


BITMAP_MAX_ID = 1 << 30
"""Below this largest id, filters use a bitmap (1 bit per id, a 128 MB cap): a membership test is one bit,
several times faster than IDSelectorBatch's hash set when a search checks every stored id."""


def _selector(allowed: np.ndarray) -> tuple[Any, Any]:
    """An ID selector for the sorted non-negative ``allowed`` ids, and the array it reads."""
    import faiss

    if not _fits_bitmap(allowed):
        return faiss.IDSelectorBatch(allowed), allowed
    bitmap = _bitmap(allowed)
    return faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap)), bitmap  # n: the bitmap's bytes


def _bitmap(allowed: np.ndarray) -> np.ndarray:
    """The FAISS bitmap (bit ``i % 8`` of byte ``i // 8`` set for each id ``i``) of the sorted, unique,
    non-negative ``allowed`` ids, made from the ids alone: a boolean array over every id up to the largest
    then packed took 2-20 ms per query over 10 M ids; this takes about 1 ms."""
    places = allowed >> 3
    bits = np.left_shift(1, allowed & 7).astype(np.uint8)
    starts = np.flatnonzero(np.r_[True, places[1:] != places[:-1]])
    bitmap = np.zeros(int(allowed[-1]) // 8 + 1, dtype=np.uint8)
    bitmap[places[starts]] = np.bitwise_or.reduceat(bits, starts)
    return bitmap


def held_in(held: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Which positions of the id map ``held`` hold one of the sorted ``allowed`` ids (never a tombstone)."""
    if not _fits_bitmap(allowed):
        found: np.ndarray = np.isin(held, allowed) & (held != TOMBSTONE)
        return found
    member = _id_mask(allowed)
    inside = (held >= 0) & (held < len(member))
    inside[inside] = member[held[inside]]
    return inside


def _fits_bitmap(allowed: np.ndarray) -> bool:
    """Whether the sorted ``allowed`` ids can be held as a bitmap (non-negative, below BITMAP_MAX_ID)."""
    return bool(allowed[0] >= 0) and int(allowed[-1]) < BITMAP_MAX_ID


def _id_mask(allowed: np.ndarray) -> np.ndarray:
    """A boolean array over ids 0 .. max(allowed), true at the ``allowed`` ones."""
    mask = np.zeros(int(allowed[-1]) + 1, dtype=bool)
    mask[allowed] = True
    return mask


def no_results(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (rows, k) float32 of -inf, ids (rows, k) int64 of -1): a page with no hits."""
    return np.full((rows, k), -np.inf, dtype=np.float32), np.full((rows, k), -1, dtype=np.int64)
