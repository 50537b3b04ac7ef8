"""Which images a learning command works on, and which group (patient, study...) each belongs to.

A selection is one or more specs, joined as a union:

    ids:1,2,3          stored image ids (the page's basket)
    cohort:NAME        the members of a saved cohort's latest run
    field:NAME         images whose field NAME is 1 / true (a sidecar label column)
    where:EXPR / EXPR  a ``--where`` filter
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import InvalidQuery, NotFound
from medsearch.query.ranking import allowed_ids
from medsearch.storage import cohort_store, queries, scores

if TYPE_CHECKING:
    from medsearch.context import Context


def select_ids(ctx: Context, specs: Sequence[str]) -> np.ndarray:
    """Sorted unique int64 ids of the union of ``specs``. Raises InvalidQuery (bad spec or filter),
    NotFound (a cohort or an id not in the store)."""
    chosen: list[np.ndarray] = [_one_spec(ctx, spec.strip()) for spec in specs if spec.strip()]
    if not chosen:
        raise InvalidQuery("no images chosen: give ids:1,2,3, cohort:NAME, field:NAME or a where filter")
    return np.unique(np.concatenate(chosen)).astype(np.int64)


def _one_spec(ctx: Context, spec: str) -> np.ndarray:
    kind, _, rest = spec.partition(":")
    if kind == "ids":
        return _stored_ids(ctx, rest)
    if kind == "cohort":
        return _cohort_ids(ctx, rest.strip())
    where = f"{rest.strip()} = 1" if kind == "field" else rest if kind == "where" else spec
    found = allowed_ids(ctx.store, [where])
    assert found is not None
    return found


def _cohort_ids(ctx: Context, name: str) -> np.ndarray:
    """The image ids of a saved cohort's latest run. Raises NotFound."""
    found = cohort_store.run(ctx.store, name)
    if found is None:
        raise NotFound(f"cohort {name!r} has no run")
    return np.array([m["id"] for m in found["members"]], dtype=np.int64)


def _stored_ids(ctx: Context, text: str) -> np.ndarray:
    try:
        ids = np.array([int(part) for part in text.split(",") if part.strip()], dtype=np.int64)
    except ValueError:
        raise InvalidQuery(f"ids: takes comma-separated image ids, not {text!r}") from None
    known = allowed_ids(ctx.store, [f"id in ({', '.join(map(str, ids.tolist()))})"]) if len(ids) else ids
    assert known is not None
    missing = sorted(set(ids.tolist()) - set(known.tolist()))
    if missing:
        raise NotFound(f"no stored image with id {', '.join(map(str, missing[:10]))}")
    return ids


def all_ids(ctx: Context) -> np.ndarray:
    """Every stored image id, sorted int64. Raises StoreError on an empty store."""
    ctx.store.vectors.load()
    return np.sort(queries.all_ids(ctx.store)).astype(np.int64)


def vectors_of(ctx: Context, ids: np.ndarray) -> np.ndarray:
    """(len(ids), dim) float32 stored vectors, in ``ids`` order."""
    found: dict[int, np.ndarray] = {}
    for chunk_ids, _paths, matrix in scores.stored_vectors(ctx.store, ids.tolist()):
        found.update(zip(chunk_ids, matrix, strict=True))
    return np.vstack([found[int(i)] for i in ids]).astype(np.float32)


def paths_of(ctx: Context, ids: Sequence[int]) -> dict[int, str]:
    """{id: path} of the stored images among ``ids``."""
    return queries.paths_by_id(ctx.store, [int(i) for i in ids])
