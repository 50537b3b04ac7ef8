"""The FAISS index: inner product over unit vectors (= cosine), ids equal to ``images.id``.

The index is a snapshot of the database, saved and loaded by ``medsearch.storage.snapshot``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from medsearch.storage import index_choice
from medsearch.storage.index_choice import IndexType

SUBSET_EXACT_MAX = 16_384
"""Allowed sets up to this size are scored exactly instead of through the approximate structure."""
TOMBSTONE = -1
"""The id of a removed HNSW node (never an image id; FAISS also pads missing results with -1)."""
COMPACT_FRACTION = 0.25
"""An HNSW graph is rebuilt from its live vectors when more than this share of its nodes are tombstones."""


def new_index(dim: int, index_type: IndexType | str = IndexType.FLAT, sample: np.ndarray | None = None,
              count: int | None = None) -> Any:
    """An empty FAISS index of ``index_type`` (see ``medsearch.storage.index_choice``) for ``dim``-d unit vectors.

    ``ivf-sq8`` and ``ivf-pq`` are trained here on ``sample`` ((n, dim) float32, n >= 1) for an expected
    ``count`` vectors (default n). Raises ValueError for an unknown type or an IVF kind without a sample.
    """
    import faiss

    kind = IndexType.parse(index_type)
    if kind is IndexType.FLAT:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind is IndexType.HNSW:
        graph = faiss.IndexHNSWFlat(dim, index_choice.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = index_choice.HNSW_EF_CONSTRUCTION
        graph.hnsw.efSearch = index_choice.HNSW_EF_SEARCH
        return faiss.IndexIDMap2(graph)
    if sample is None or len(sample) == 0:
        raise ValueError(f"an {kind} index is trained on a sample of the vectors; none was given")
    expected = max(count or 0, len(sample))
    ivf: Any
    if kind is IndexType.IVF_PQ:
        lists = min(index_choice.pq_lists(expected), max(1, len(sample) // index_choice.IVF_TRAIN_PER_LIST))
        ivf = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, lists, index_choice.pq_codes(dim), 4,
                                       faiss.METRIC_INNER_PRODUCT)
        ivf.cp.niter = 10  # the k-means of the lists: the cost of a build at 10 M; 10 rounds settle them here
        ivf.implem = index_choice.PQ_SCAN_IMPLEM
        probes = index_choice.pq_probes(lists)
        sample = _enough_to_train(sample)
    else:
        lists = min(index_choice.ivf_lists(expected), max(1, len(sample) // index_choice.IVF_TRAIN_PER_LIST))
        ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
        probes = index_choice.ivf_probes(lists)
    ivf.cp.min_points_per_centroid = 1
    ivf.train(np.ascontiguousarray(sample, dtype=np.float32))
    ivf.nprobe = probes
    return ivf


PQ_TRAIN_MIN = 256
"""Fewest training rows of a PQ index (16 per 4-bit code book, several times over)."""


def _enough_to_train(sample: np.ndarray) -> np.ndarray:
    """``sample``, repeated with a small jitter up to ``PQ_TRAIN_MIN`` rows when it has fewer. Such an index
    holds fewer vectors than a query re-ranks, so its codes only order candidates that are all re-scored."""
    if len(sample) >= PQ_TRAIN_MIN:
        return sample
    rows = np.resize(np.asarray(sample, dtype=np.float32), (PQ_TRAIN_MIN, sample.shape[1]))
    return rows + np.random.default_rng(0).normal(0, 1e-3, rows.shape).astype(np.float32)


def tune(index: Any) -> None:
    """Set a loaded index's search breadth (lists read, graph breadth) and its ivf-pq scan to what
    ``medsearch.storage.index_choice`` says now: a file keeps the values it was saved with, and a better choice
    should not wait for a rebuild."""
    import faiss

    kind = index_type_of(index)
    if kind is IndexType.IVF_PQ:
        index.nprobe = index_choice.pq_probes(index.nlist)
        index.implem = index_choice.PQ_SCAN_IMPLEM
    elif kind is IndexType.IVF_SQ8:
        index.nprobe = index_choice.ivf_probes(index.nlist)
    elif kind is IndexType.HNSW:
        graph: Any = faiss.downcast_index(index.index)
        graph.hnsw.efSearch = index_choice.HNSW_EF_SEARCH


def index_type_of(index: Any) -> IndexType:
    """The kind of an index made by ``new_index``."""
    import faiss

    if isinstance(index, faiss.IndexIVFPQFastScan):
        return IndexType.IVF_PQ
    if isinstance(index, faiss.IndexIVF):
        return IndexType.IVF_SQ8
    inner = faiss.downcast_index(index.index)
    return IndexType.HNSW if isinstance(inner, faiss.IndexHNSW) else IndexType.FLAT


def add(index: Any, ids: np.ndarray, vectors: np.ndarray, replace: bool = True) -> None:
    """Add (n, d) float32 unit rows under int64 ``ids``. Ids already held are replaced unless ``replace``
    is false (a build from scratch: the removal pass reads every list of an IVF index)."""
    if len(ids) == 0:
        return
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if replace:
        remove(index, ids)
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)


def remove(index: Any, ids: np.ndarray) -> int:
    """Remove ``ids`` (absent ones are ignored); returns how many were removed.

    HNSW graphs cannot drop nodes: a removed HNSW vector becomes a tombstone (its id in the id map is set
    to ``TOMBSTONE``) that stays in the graph for routing but is never returned, and the graph is rebuilt
    from the live vectors once tombstones pass ``COMPACT_FRACTION`` of its nodes.
    """
    import faiss

    if len(ids) == 0 or index.ntotal == 0:
        return 0
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if index_type_of(index) is not IndexType.HNSW:
        return int(index.remove_ids(faiss.IDSelectorBatch(ids)))
    held = faiss.vector_to_array(index.id_map)
    gone = np.isin(held, ids) & (held != TOMBSTONE)
    if not gone.any():
        return 0
    held[gone] = TOMBSTONE
    if np.count_nonzero(held == TOMBSTONE) > COMPACT_FRACTION * len(held):
        _compact(index, held)
    else:
        faiss.copy_array_to_vector(held, index.id_map)
        index.construct_rev_map()
    return int(gone.sum())


def _compact(index: Any, held: np.ndarray) -> None:
    """Rebuild an HNSW index in place from its live vectors (``held``: the id map with tombstones)."""
    live = held[held != TOMBSTONE]
    matrix = index.reconstruct_batch(live) if len(live) else None
    index.reset()
    if matrix is not None:
        index.add_with_ids(matrix, live)


def live_count(index: Any) -> int:
    """How many vectors a search can return: ``ntotal`` less the HNSW tombstones."""
    return len(ids(index)) if index_type_of(index) is IndexType.HNSW else int(index.ntotal)


def ids(index: Any) -> np.ndarray:
    """The int64 ids a search can return, in storage order (tombstones left out)."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        lists: Any = index.invlists
        chunks = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                  for i in range(index.nlist) if lists.list_size(i)]
        return np.concatenate(chunks).astype(np.int64) if chunks else np.empty(0, np.int64)
    held = faiss.vector_to_array(index.id_map).astype(np.int64)
    live: np.ndarray = held[held != TOMBSTONE]
    return live


def search(index: Any, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None,
           exact: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` by inner product: (scores (q, k) float32, ids (q, k) int64), best first, padded with -1.

    ``queries`` is (q, d) or (d,) float32. ``allowed_ids`` restricts the hits to those ids inside the search
    (a FAISS ID selector), so k hits come back whenever at least k allowed ids are in the index. Small
    allowed sets (<= ``SUBSET_EXACT_MAX``) are scored exactly; an approximate search that returns fewer
    hits than it should falls back to the exact route. An ivf-pq index ranks its candidates by the stored
    vectors ``exact`` gives ((n,) int64 ids -> (n, d) float32, zeros for an id no longer stored), which
    it needs (ValueError without): see ``medsearch.storage.reranked``.
    """
    queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
    if index_type_of(index) is not IndexType.IVF_PQ:
        return _candidates(index, queries, k, allowed_ids)
    if exact is None:
        raise ValueError("an ivf-pq index ranks its candidates by their stored vectors: pass exact= "
                         "(Store.search does)")
    from medsearch.storage.reranked import search_reranked  # it builds on this module

    return search_reranked(index, queries, k, allowed_ids, exact)


def _candidates(index: Any, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``search`` by the index's own scores."""
    if allowed_ids is None and index_type_of(index) is IndexType.HNSW:
        return _search_live(index, queries, k)
    if allowed_ids is None:
        return _faiss_search(index, queries, k)
    allowed = sorted_unique(allowed_ids)
    wanted = min(k, len(allowed))
    if wanted == 0:
        return _empty(len(queries), k)
    if len(allowed) <= SUBSET_EXACT_MAX and index_type_of(index) is not IndexType.FLAT:  # flat + selector: exact
        return _exact_subset(index, queries, k, allowed)
    params, _keep = _filtered_params(index, allowed, len(allowed) / max(1, index.ntotal))
    scores, ids = _faiss_search(index, queries, k, params)
    if (ids[:, wanted - 1] < 0).any():
        return _exact_subset(index, queries, k, allowed)
    return scores, ids


def sorted_unique(ids: np.ndarray) -> np.ndarray:
    """``ids`` as sorted unique int64, without the cost of ``np.unique`` when they are so already (a filter's
    ids are: ``np.unique`` of 100 k took ~14 ms, for every query)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return ids
    found: np.ndarray = np.unique(ids)
    return found


def _faiss_search(index: Any, queries: np.ndarray, k: int, params: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """FAISS's own search, typed: (scores (q, k) float32, ids (q, k) int64)."""
    scores, ids = index.search(queries, k, params=params) if params is not None else index.search(queries, k)
    return np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64)


def _search_live(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unfiltered HNSW search that skips tombstones (a selector of the non-negative ids)."""
    import faiss

    params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
    graph: Any = faiss.downcast_index(index.index)
    params.efSearch = graph.hnsw.efSearch
    params.sel = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)
    return _faiss_search(index, queries, k, params)


def _filtered_params(index: Any, allowed: np.ndarray, fraction: float, exhaustive: bool = False,
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


def _exact_subset(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Score the allowed ids exactly: every list of an IVF index, or a scan of the float vectors under an
    HNSW graph (or a flat index) restricted to the allowed ids' positions, which computes only those."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        params, _keep = _filtered_params(index, allowed, 1.0, exhaustive=True)
        return _faiss_search(index, queries, k, params)
    held = faiss.vector_to_array(index.id_map)
    bitmap = np.packbits(_held_in(held, allowed), bitorder="little")
    params = faiss.SearchParameters()
    params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
    inner: Any = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    scores, positions = storage.search(queries, k, params=params)
    return scores, np.where(positions >= 0, held[np.maximum(positions, 0)], -1)


def _held_in(held: np.ndarray, allowed: np.ndarray) -> np.ndarray:
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


def _empty(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((rows, k), -np.inf, dtype=np.float32), np.full((rows, k), -1, dtype=np.int64)
