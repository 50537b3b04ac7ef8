"""Which FAISS index a store uses, and the search parameters of each kind. Pure arithmetic: no FAISS import.

Kinds (all inner product over unit vectors, ids = ``images.id``):

- ``flat``: exact ``IndexFlatIP`` in an ``IndexIDMap2``; 4 bytes per dimension (4.6 KB at d = 1152). Exact,
  but every query reads every vector: fine while that stays fast (~30 ms per query at 50 k here).
- ``hnsw``: ``IndexHNSWFlat`` (M = 32) in an ``IndexIDMap2``: ~5 KB per vector at d = 1152 (the float
  vectors plus the graph), sub-millisecond queries, slow to build on few cores. HNSW cannot remove ids:
  a removed vector stays in the graph as a tombstone that is never returned, and the graph is rebuilt
  once a quarter of its nodes are tombstones (see ``medsearch.storage.vectors.remove``).
- ``ivf-sq8``: ``IndexIVFScalarQuantizer`` (8 bits per dimension, ~1.2 KB per vector at d = 1152) with
  its own ids, trained on a sample of the vectors; ``nprobe`` is set from the list count.
- ``ivf-pq``: ``IndexIVFPQFastScan``, product-quantizer codes of 4 bits per sub-vector of 3 dimensions
  (192 bytes at d = 1152, ~230 B per vector with ids and list padding), trained on a sample. PQ scores
  alone rank poorly (recall@10 ~0.26 on clustered data), so every search re-ranks the best
  ``RERANK_DEPTH`` candidates by their exact cosine, with the stored vectors read from the database
  (recall@10 0.999 at 300 k, ``benchmarks/bench_scale.py``). For millions of images. Codes of 6
  dimensions (96 bytes) rank image-like queries as well but lose text-like ones (queries far from every
  image, as SigLIP text vectors are: recall@10 0.81 against 0.97 at 200 k with a quarter of the lists).

The thresholds follow FAISS's own guidance (its wiki, "Guidelines to choose an index") and the figures
of ``benchmarks/bench_search.py``.
"""

from __future__ import annotations

import math
from enum import StrEnum


class IndexType(StrEnum):
    """A kind of FAISS index (the values are what the store records and the CLI takes)."""

    FLAT = "flat"
    HNSW = "hnsw"
    IVF_SQ8 = "ivf-sq8"
    IVF_PQ = "ivf-pq"

    @classmethod
    def parse(cls, name: str) -> IndexType:
        """The kind called ``name``. Raises ValueError naming the known kinds."""
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unknown index type {name!r}; choose one of {', '.join(INDEX_TYPES)}") from None


INDEX_TYPES: tuple[IndexType, ...] = tuple(IndexType)
FLAT_MAX = 50_000
HNSW_MAX = 500_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 768
"""Graph breadth of an hnsw query. Text vectors lie far from every image vector (SigLIP: best cosine ~0.2), and
a graph built on images finds their neighbours less well than an image's. Clustered 1152-d vectors, text-like
queries' recall@10 (``benchmarks/bench_text_recall.py``):

- 60 k: 0.76 / 0.90 / 0.98 / 0.99 / 0.99 / 0.99 at 64 / 128 / 256 / 384 / 512 / 768;
- 200 k: 0.80 / 0.90 / 0.965 / 0.985 / 0.996 / 0.996 at 128 / 256 / 384 / 512 / 768 / 1024;

image-like ones 0.98-1.0 from 64 on. The width needed grows about as sqrt(count) (0.965 at ~200 for 60 k, 384
for 200 k), so 768 is chosen for the 500 k where ``auto`` moves on to ivf-sq8 (~480 at 200 k's scale)."""
IVF_TRAIN_PER_LIST = 40
IVF_SQ8_MAX = 2_000_000
PQ_DIMS_PER_CODE = 3  # dimensions per 4-bit PQ sub-vector: 384 codes (192 bytes) at d = 1152
PQ_TRAIN_MAX = 262_144  # training vectors of an ivf-pq index at most (1.2 GB of float32 at d = 1152)
RERANK_DEPTH = 500  # ivf-pq candidates re-scored exactly per query (image-like queries: recall@10 0.999 at 300 k
# with 300, 0.81 with 100; queries from another distribution: 0.94 with 300, 0.98 with 500)
PQ_SCAN_IMPLEM = 14  # FastScan's "multithreaded over nq * nprobe": a single query's lists split over the
# cores (10 M, 2 cores, fresh queries: codes of 128 lists 5.4 -> 3.3 ms, of a 1 % filter's 384 12.6 -> 7.5 ms,
# the same candidates; on one core no change), where the default (0) scans one query on one core
FILTERED_RERANK_DEPTH = 200  # the same for a filtered query, whose candidates all pass the filter: there the
# lists read bound recall, not the depth (10 M, a 1 % filter, lists 2x: depth 150 0.950, 200 0.951, 500 0.955)
RETRAIN_FRACTION = 0.2
"""An IVF index whose share of vectors added after training passes this is due a retrain (``reindex``):
its lists were fitted to data it no longer resembles, and recall drops past about a fifth."""
ID_OVERHEAD = 16  # bytes per vector for the ids (IndexIDMap2 id map and reverse map; IVF list ids)


def bytes_per_vector(index_type: IndexType | str, dim: int) -> int:
    """Estimated memory per vector (bytes) of an index kind at dimension ``dim``. Raises ValueError."""
    kind = IndexType.parse(index_type)
    if kind is IndexType.FLAT:
        return 4 * dim + ID_OVERHEAD
    if kind is IndexType.HNSW:
        return 4 * dim + HNSW_M * 2 * 4 * 5 // 4 + ID_OVERHEAD
    if kind is IndexType.IVF_PQ:
        return pq_codes(dim) // 2 + 24 + ID_OVERHEAD  # codes, list padding to blocks of 32
    return dim + 8 + ID_OVERHEAD


def choose_index_type(count: int, memory_budget: int | None = None, dim: int = 1152) -> IndexType:
    """The index kind for ``count`` vectors within ``memory_budget`` bytes (None: no limit).

    Exact search up to ``FLAT_MAX`` vectors, HNSW up to ``HNSW_MAX``, IVF-SQ8 up to ``IVF_SQ8_MAX``, IVF-PQ
    beyond, or the first of these whose memory fits the budget (IVF-PQ when none does).
    """
    def fits(kind: IndexType) -> bool:
        return memory_budget is None or count * bytes_per_vector(kind, dim) <= memory_budget

    if count <= FLAT_MAX and fits(IndexType.FLAT):
        return IndexType.FLAT
    if count <= HNSW_MAX and fits(IndexType.HNSW):
        return IndexType.HNSW
    if count <= IVF_SQ8_MAX and fits(IndexType.IVF_SQ8):
        return IndexType.IVF_SQ8
    return IndexType.IVF_PQ


def ivf_lists(count: int) -> int:
    """IVF list count for ``count`` vectors: about 2 sqrt(count), a power of two, with at least
    ``IVF_TRAIN_PER_LIST`` training vectors per list (1 for tiny sets)."""
    if count < 2 * IVF_TRAIN_PER_LIST:
        return 1
    lists = int(2 ** round(math.log2(2 * math.sqrt(count))))
    return max(1, min(lists, count // IVF_TRAIN_PER_LIST))


def ivf_probes(lists: int) -> int:
    """Lists visited per query: enough for recall@10 >= 0.95 on clustered 1152-d data, text-like queries
    included (500 k, 32 of 1024 lists: text-like 0.986, image-like 0.973, the same from 32 to 128 probes: the
    8-bit codes bound it there, not the lists; ``benchmarks/bench_text_recall.py``)."""
    return min(lists, max(32, lists // 32))


def pq_lists(count: int) -> int:
    """IVF list count of an ivf-pq index for ``count`` vectors: about sqrt(count), a power of two (its
    lists are scanned fast, and half the lists of ``ivf_lists`` halve the k-means and assignment cost of a
    build), with at least ``IVF_TRAIN_PER_LIST`` training vectors per list."""
    if count < 2 * IVF_TRAIN_PER_LIST:
        return 1
    lists = int(2 ** round(math.log2(math.sqrt(count))))
    return max(1, min(lists, min(count, PQ_TRAIN_MAX) // IVF_TRAIN_PER_LIST))


def pq_probes(lists: int) -> int:
    """Lists an ivf-pq query visits: a thirty-second of them, at least 64 (64 of 1024 at 1 M, 128 of 4096
    at 10 M; all of a small index). At 10 M, 64, 128 and 256 lists gave the same recall@10 on image- and
    text-like queries (0.97-0.98) while the code scan took 2.5, 4 and 7 ms (``benchmarks/bench_scale.py``)."""
    return min(lists, max(64, lists // 32))


def pq_codes(dim: int) -> int:
    """How many 4-bit PQ sub-vectors an ivf-pq index cuts a ``dim``-d vector into: a divisor of ``dim``
    near dim / ``PQ_DIMS_PER_CODE`` (at least 1)."""
    target = max(1, dim // PQ_DIMS_PER_CODE)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def train_size(count: int, index_type: IndexType | str = IndexType.IVF_SQ8) -> int:
    """How many vectors to train an IVF index of ``index_type`` for ``count`` vectors on."""
    if IndexType.parse(index_type) is IndexType.IVF_PQ:
        return min(count, PQ_TRAIN_MAX, max(pq_lists(count) * IVF_TRAIN_PER_LIST, 10_000))
    return min(count, ivf_lists(count) * IVF_TRAIN_PER_LIST * 2)


def is_trained_kind(index_type: IndexType | str) -> bool:
    """Whether an index kind is trained on a sample (and so can fall behind the data added later)."""
    return IndexType.parse(index_type) in (IndexType.IVF_SQ8, IndexType.IVF_PQ)
