"""The FAISS index: inner product over unit vectors (= cosine), ids equal to ``images.id``.

The index is a snapshot of the database, saved and loaded by ``medsearch.storage.snapshot``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from medsearch.storage import index_choice, search_width
from medsearch.storage.faiss_calls import (
    TOMBSTONE,
    filtered_params,
    held_in,
    index_type_of,
    no_results,
    search_index,
    sorted_unique,
)
from medsearch.storage.index_choice import IndexType
from medsearch.storage.reranked import search_reranked

SUBSET_EXACT_MAX = 16_384
"""Allowed sets up to this size are scored exactly instead of through the approximate structure."""
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


def tune(index: Any, width: int | None = None) -> None:
    """Set a loaded index's search breadth (lists read, graph breadth) and its ivf-pq scan: the ``width``
    measured for it when it was built (``medsearch.storage.search_width``, kept in the snapshot's manifest),
    else what ``medsearch.storage.index_choice`` says now (a file keeps the values it was saved with, and a
    better default should not wait for a rebuild)."""
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
    if width is not None:
        search_width.set_width(index, width)


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
                         "(VectorIndex.search does)")
    return search_reranked(index, queries, k, allowed_ids, exact)


def _candidates(index: Any, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``search`` by the index's own scores."""
    if allowed_ids is None and index_type_of(index) is IndexType.HNSW:
        return _search_live(index, queries, k)
    if allowed_ids is None:
        return search_index(index, queries, k)
    allowed = sorted_unique(allowed_ids)
    wanted = min(k, len(allowed))
    if wanted == 0:
        return no_results(len(queries), k)
    if len(allowed) <= SUBSET_EXACT_MAX and index_type_of(index) is not IndexType.FLAT:  # flat + selector: exact
        return _exact_subset(index, queries, k, allowed)
    params, _keep = filtered_params(index, allowed, len(allowed) / max(1, index.ntotal))
    scores, ids = search_index(index, queries, k, params)
    if (ids[:, wanted - 1] < 0).any():
        return _exact_subset(index, queries, k, allowed)
    return scores, ids


def _search_live(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unfiltered HNSW search that skips tombstones (a selector of the non-negative ids)."""
    import faiss

    params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
    graph: Any = faiss.downcast_index(index.index)
    params.efSearch = graph.hnsw.efSearch
    params.sel = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)
    return search_index(index, queries, k, params)


def _exact_subset(index: Any, queries: np.ndarray, k: int, allowed: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Score the allowed ids exactly: every list of an IVF index, or a scan of the float vectors under an
    HNSW graph (or a flat index) restricted to the allowed ids' positions, which computes only those."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        params, _keep = filtered_params(index, allowed, 1.0, exhaustive=True)
        return search_index(index, queries, k, params)
    held = faiss.vector_to_array(index.id_map)
    bitmap = np.packbits(held_in(held, allowed), bitorder="little")
    params = faiss.SearchParameters()
    params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
    inner: Any = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(inner.storage) if isinstance(inner, faiss.IndexHNSW) else inner
    scores, positions = storage.search(queries, k, params=params)
    return scores, np.where(positions >= 0, held[np.maximum(positions, 0)], -1)
