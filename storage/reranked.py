"""Search of an ``ivf-pq`` index: candidates by PQ codes, ranked by the stored vectors' exact cosine.

PQ scores alone order near neighbours poorly (recall@10 ~0.3 on clustered data), so a query takes the
best ``RERANK_DEPTH`` (or 2 k) candidates by codes and re-scores them with their stored vectors (given by
the caller's ``exact``: the store's vector file, ``medsearch.storage.rerank_vectors``, or the database). A
filter keeps the same shape, with ``FILTERED_RERANK_DEPTH``: an allowed set no larger than the depth is
re-scored whole, without the codes (exact); a larger one goes into the code search as an ID selector,
over at most ``WIDEST`` times the lists of an unfiltered query, and when fewer candidates than wanted
come back, over every list (``benchmarks/bench_scale.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from medsearch.storage import index_choice
from medsearch.storage.faiss_calls import filtered_params, no_results, search_index, sorted_unique
from medsearch.storage.row_quantizer import QuantizedRows

Exact = Callable[[np.ndarray], "np.ndarray | QuantizedRows"]
"""The stored vectors of ids: (n,) int64 -> (n, d) float32, a row of zeros for an id no longer stored; or
the int8 rows of a vector file as their codes (``medsearch.storage.row_quantizer``), scored undecoded."""
INT8_REFINED = 20
"""With int8 rows (``medsearch.storage.row_quantizer``), how many of each query's candidates (at least 2 k),
best by the codes, are scored again with their exact float32 rows from the database: at 1 M, recall@10 of
the codes alone was 0.963 image-like / 0.971 text-like, with 20 re-scored 0.993 / 0.999, as with the
float32 rows, for ~0.9 ms more on a busy 2-core machine (``benchmarks/bench_scale.py --rerank``)."""
WIDEST = 3.0
"""How many times an unfiltered query's lists a filtered one may read. At 10 M with a 1 % filter (128
lists unfiltered; re-rank depth 200), recall@10 of image-like / text-like fresh queries on two query sets:
2x 0.951 / 0.944, 2.5x 0.96-0.957 / 0.95-0.946, 3x 0.969-0.961 / 0.955-0.951, 3.5x 0.969 / 0.954; 3x
costs 0-2 ms more than 2.5x, 3.5x 3-5 ms more (``benchmarks/bench_scale.py``)."""


def search_reranked(index: Any, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None,
                    exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """``medsearch.storage.vectors.search`` for an ivf-pq index: (scores (q, k) float32, ids (q, k) int64) of the
    (q, d) float32 ``queries``, exact cosines, best first, padded with -1."""
    if allowed_ids is None:
        _codes, found = search_index(index, queries, max(index_choice.RERANK_DEPTH, 2 * k))
        return rescored(queries, found, k, exact)
    depth = max(index_choice.FILTERED_RERANK_DEPTH, 2 * k)
    allowed = sorted_unique(allowed_ids)
    if len(allowed) == 0:
        return no_results(len(queries), k)
    if len(allowed) <= depth:
        return rescored(queries, np.broadcast_to(allowed, (len(queries), len(allowed))), k, exact)
    params, _keep = filtered_params(index, allowed, len(allowed) / max(1, index.ntotal), widest=WIDEST)
    _codes, found = search_index(index, queries, depth, params)
    if (found[:, depth - 1] < 0).any():
        params, _keep = filtered_params(index, allowed, 1.0, exhaustive=True)
        _codes, found = search_index(index, queries, depth, params)
    return rescored(queries, found, k, exact)


def rescored(queries: np.ndarray, found: np.ndarray, k: int, exact: Exact) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of each query's candidate ids ``found`` (q, n; -1 = none), by exact inner product with
    the vectors ``exact`` returns; ids it no longer finds are dropped."""
    scores, ids = no_results(len(queries), k)
    held = np.unique(found[found >= 0])
    if len(held) == 0:
        return scores, ids
    matrix = exact(held)
    if isinstance(matrix, QuantizedRows):
        stored, every = matrix.stored, matrix.scores(queries)
        if matrix.exact is not None and INT8_REFINED:
            best = _best(found, held, stored, every, max(INT8_REFINED, 2 * k))
            return rescored(queries, best, k, matrix.exact)
    else:
        stored = np.any(matrix, axis=1)
        every = matrix @ queries.T  # (held, q): one product for all queries
    for row in range(len(queries)):
        candidates = found[row][found[row] >= 0]
        positions = np.searchsorted(held, candidates)
        positions = positions[stored[positions]]
        exact_scores = every[positions, row]
        best = np.argsort(-exact_scores, kind="stable")[:k]
        scores[row, : len(best)] = exact_scores[best]
        ids[row, : len(best)] = held[positions[best]]
    return scores, ids


def _best(found: np.ndarray, held: np.ndarray, stored: np.ndarray, every: np.ndarray, size: int) -> np.ndarray:
    """(q, size) ids: each query's ``size`` best candidates of ``found`` by the scores ``every`` (held, q)
    of the sorted ids ``held``, of those ``stored``; padded with -1."""
    best = np.full((len(found), size), -1, dtype=np.int64)
    for row in range(len(found)):
        positions = np.searchsorted(held, found[row][found[row] >= 0])
        positions = positions[stored[positions]]
        top = positions[np.argsort(-every[positions, row], kind="stable")[:size]]
        best[row, : len(top)] = held[top]
    return best
