"""How wide an approximate index searches: the graph breadth of an ``hnsw`` index (efSearch) and the lists an
``ivf-sq8`` index reads (nprobe), measured for each index when it is built or reindexed.

Text vectors lie far from every image vector (SigLIP: best cosine ~0.2), and an index built on image vectors
finds their neighbours less well than an image's (``index_choice.HNSW_EF_SEARCH``). So the width is the
smallest of ``HNSW_WIDTHS`` (or a power of two of the lists) at which text-like queries reach recall@10 >=
``TARGET`` + ``MARGIN`` against an exhaustive search of the same index (for hnsw, the float vectors under the
graph; for ivf-sq8, every list, whose 8-bit codes bound its recall whatever the width: there ``CODES_LOSS``
more). The queries are the store's own cached text vectors (``text_embeddings``) when it holds at least
``CACHED_MIN`` of the index's dimension, else synthetic text-like ones made from stored vectors as
``benchmarks/bench_scale.py`` makes them. The width is saved in the snapshot's manifest (``search_width``) and
set again on every load (``medsearch.storage.vectors.tune``); ``ivf-pq`` keeps ``index_choice.pq_probes`` (its
candidates are re-ranked exactly), ``flat`` is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from medsearch.storage.faiss_calls import TOMBSTONE, index_type_of
from medsearch.storage.index_choice import IndexType

TARGET = 0.95
MARGIN = 0.02
"""Recall is measured on ``QUERIES`` queries, an estimate within about 0.02 of the recall of the next ones:
a width is chosen where the measured recall passes ``TARGET`` by this much."""
CODES_LOSS = 0.02
"""``ivf-sq8``'s exhaustive search is itself short of exact search by what its 8-bit codes lose (text-like
recall@10 0.976-0.988 at any width, 500 k-2 M, ``benchmarks/bench_text_recall.py``), so its width must pass
the target by this much more: at 2 M, 1 list of 2048 passed 0.97 against the exhaustive search and gave
0.949 against exact search."""
K = 10
QUERIES = 100
CACHED_MIN = 50
HNSW_WIDTHS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
GAP = 1.5
"""How far a synthetic text-like query is moved from a stored vector along one shared direction (the gap
between the image and text clouds), before noise and normalisation (``bench_scale.query_sets``)."""
NOISE = 2.0


def tunable(index: Any) -> bool:
    """Whether ``index``'s width is measured (hnsw, ivf-sq8)."""
    return index_type_of(index) in (IndexType.HNSW, IndexType.IVF_SQ8)


def width_of(index: Any) -> int | None:
    """The index's search width (efSearch or nprobe); None for flat and ivf-pq."""
    import faiss

    kind = index_type_of(index)
    if kind is IndexType.HNSW:
        graph: Any = faiss.downcast_index(index.index)
        return int(graph.hnsw.efSearch)
    return int(index.nprobe) if kind is IndexType.IVF_SQ8 else None


def set_width(index: Any, width: int) -> None:
    """Set an hnsw or ivf-sq8 index's search width (ignored for the other kinds)."""
    import faiss

    kind = index_type_of(index)
    if kind is IndexType.HNSW:
        graph: Any = faiss.downcast_index(index.index)
        graph.hnsw.efSearch = int(width)
    elif kind is IndexType.IVF_SQ8:
        index.nprobe = max(1, min(int(index.nlist), int(width)))


def text_like(stored: np.ndarray, count: int = QUERIES, seed: int = 0) -> np.ndarray:
    """(count, d) synthetic text-like unit queries from (n, d) stored unit vectors: each a stored vector
    moved ``GAP`` along one random direction shared by all, plus noise, normalised."""
    rng = np.random.default_rng(seed)
    dim = stored.shape[1]
    base = stored[rng.integers(0, len(stored), count)].astype(np.float32)
    gap = rng.standard_normal((dim,), dtype=np.float32)
    moved = base + GAP * gap / np.linalg.norm(gap)
    moved += NOISE * rng.standard_normal((count, dim)).astype(np.float32) / np.sqrt(dim)
    unit: np.ndarray = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return unit.astype(np.float32)


def choose(index: Any, queries: np.ndarray) -> int | None:
    """The smallest width of ``index`` at which ``queries`` reach recall@10 >= ``target(index)`` against its
    exhaustive search (the widest tried when none does), left set on the index; None (nothing changed)
    for flat and ivf-pq, or an index with fewer than ``K`` vectors or no queries."""
    if not tunable(index) or index.ntotal < K or len(queries) == 0:
        return None
    wanted = target(index)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    truth = _exhaustive(index, queries)
    chosen = None
    for width in _widths(index):
        set_width(index, width)
        chosen = width
        if recall(index.search(queries, K)[1], truth) >= wanted:
            break
    return chosen


def target(index: Any) -> float:
    """The recall@10 against the exhaustive search that ``choose`` asks of ``index``'s width."""
    return TARGET + MARGIN + (CODES_LOSS if index_type_of(index) is IndexType.IVF_SQ8 else 0.0)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """recall@k of (q, k) ``found`` ids against (q, k) ``truth`` ids (-1 padding never counts)."""
    hits = sum(len(set(row[row >= 0].tolist()) & set(expected[expected >= 0].tolist()))
               for row, expected in zip(found, truth, strict=True))
    return hits / max(1, int(np.count_nonzero(truth >= 0)))


def _widths(index: Any) -> list[int]:
    if index_type_of(index) is IndexType.HNSW:
        return list(HNSW_WIDTHS)
    lists = int(index.nlist)
    return sorted({min(lists, 2 ** power) for power in range(lists.bit_length() + 1)})


def _exhaustive(index: Any, queries: np.ndarray) -> np.ndarray:
    """(q, K) ids of an exhaustive search of ``index``: every list of an IVF index, or the float vectors
    under an hnsw graph (tombstones left out)."""
    import faiss

    if isinstance(index, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = index.nlist
        return np.asarray(index.search(queries, K, params=params)[1])
    held = faiss.vector_to_array(index.id_map)
    graph: Any = faiss.downcast_index(index.index)
    storage = faiss.downcast_index(graph.storage)
    _scores, positions = storage.search(queries, min(len(held), K + int(np.count_nonzero(held == TOMBSTONE))))
    ids = np.where(positions >= 0, held[np.maximum(positions, 0)], -1)
    live = [row[row != TOMBSTONE][:K] for row in ids]
    return np.array([np.pad(row, (0, K - len(row)), constant_values=-1) for row in live])
