"""Which FAISS index a store uses, and the search parameters of each kind. Pure arithmetic: no FAISS import.

Kinds (all inner product over unit vectors, ids = ``images.id``):

- ``flat``: exact ``IndexFlatIP`` in an ``IndexIDMap2``; 4 bytes per dimension (4.6 KB at d = 1152). Exact,
  but every query reads every vector: fine while that stays fast (~30 ms per query at 50 k here).
- ``hnsw``: ``IndexHNSWFlat`` (M = 32) in an ``IndexIDMap2``: ~5 KB per vector at d = 1152 (the float
  vectors plus the graph), sub-millisecond queries, slow to build on few cores. HNSW cannot remove ids:
  a removed vector stays in the graph as a tombstone that is never returned, and the graph is rebuilt
  once a quarter of its nodes are tombstones (see ``storage.vectors.remove``).
- ``ivf-sq8``: ``IndexIVFScalarQuantizer`` (8 bits per dimension, ~1.2 KB per vector at d = 1152) with
  its own ids, trained on a sample of the vectors; ``nprobe`` is set from the list count.

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
HNSW_EF_SEARCH = 128
IVF_TRAIN_PER_LIST = 40
ID_OVERHEAD = 16  # bytes per vector for the ids (IndexIDMap2 id map and reverse map; IVF list ids)


def bytes_per_vector(index_type: IndexType | str, dim: int) -> int:
    """Estimated memory per vector (bytes) of an index kind at dimension ``dim``. Raises ValueError."""
    kind = IndexType.parse(index_type)
    if kind is IndexType.FLAT:
        return 4 * dim + ID_OVERHEAD
    if kind is IndexType.HNSW:
        return 4 * dim + HNSW_M * 2 * 4 * 5 // 4 + ID_OVERHEAD
    return dim + 8 + ID_OVERHEAD


def choose_index_type(count: int, memory_budget: int | None = None, dim: int = 1152) -> IndexType:
    """The index kind for ``count`` vectors within ``memory_budget`` bytes (None: no limit).

    Exact search up to ``FLAT_MAX`` vectors, HNSW up to ``HNSW_MAX``, IVF-SQ8 beyond (or whenever the
    float vectors do not fit the budget).
    """
    def fits(kind: IndexType) -> bool:
        return memory_budget is None or count * bytes_per_vector(kind, dim) <= memory_budget

    if count <= FLAT_MAX and fits(IndexType.FLAT):
        return IndexType.FLAT
    if count <= HNSW_MAX and fits(IndexType.HNSW):
        return IndexType.HNSW
    return IndexType.IVF_SQ8


def ivf_lists(count: int) -> int:
    """IVF list count for ``count`` vectors: about 2 sqrt(count), a power of two, with at least
    ``IVF_TRAIN_PER_LIST`` training vectors per list (1 for tiny sets)."""
    if count < 2 * IVF_TRAIN_PER_LIST:
        return 1
    lists = int(2 ** round(math.log2(2 * math.sqrt(count))))
    return max(1, min(lists, count // IVF_TRAIN_PER_LIST))


def ivf_probes(lists: int) -> int:
    """Lists visited per query: enough for recall@10 >= 0.95 on clustered 1152-d data."""
    return min(lists, max(32, lists // 32))


def train_size(count: int) -> int:
    """How many vectors to train an IVF index for ``count`` vectors on."""
    return min(count, ivf_lists(count) * IVF_TRAIN_PER_LIST * 2)
