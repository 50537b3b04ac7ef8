"""Each audited image's nearest neighbours among the audited images, from the FAISS index (restricted
to their ids, searched 1024 queries at a time): never an all-pairs scan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from medsearch.context import Context

BATCH = 1024


def neighbour_pairs(ctx: Context, ids: np.ndarray, matrix: np.ndarray, rows: np.ndarray,
                    k: int) -> Iterator[tuple[int, int, float]]:
    """(a, b, cosine) for each row ``a`` of ``rows`` and each of its ``k`` nearest other rows ``b``
    (rows index ``ids``, int64 image ids; ``matrix``: (len(ids), dim) float32 stored vectors in that
    order). Raises StoreError when the store has no index."""
    row_of = {int(i): n for n, i in enumerate(ids)}
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        scores, hits = ctx.store.vectors.search(matrix[chunk], k + 1, ids)
        for a, row_scores, row_hits in zip(chunk.tolist(), scores, hits, strict=True):
            for score, hit in zip(row_scores.tolist(), row_hits.tolist(), strict=True):
                b = row_of.get(int(hit))
                if b is not None and b != a:
                    yield a, b, float(score)
