"""Which images a learning command works on, and which group (patient, study...) each belongs to.

A selection is one or more specs, joined as a union:

    ids:1,2,3          stored image ids (the page's basket)
    cohort:NAME        the members of a saved cohort's latest run
    field:NAME         images whose field NAME is 1 / true (a sidecar label column)
    where:EXPR / EXPR  a ``--where`` filter
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from search.cohort_criteria import check_column
from search.ranking import allowed_ids, group_values
from search.zeroshot import stored_vectors
from storage.errors import InvalidQuery, NotFound
from storage.models import Image


def select_ids(ms: Any, specs: Sequence[str]) -> np.ndarray:
    """Sorted unique int64 ids of the union of ``specs``. Raises InvalidQuery (bad spec or filter),
    NotFound (a cohort or an id not in the store)."""
    chosen: list[np.ndarray] = [_one_spec(ms, spec.strip()) for spec in specs if spec.strip()]
    if not chosen:
        raise InvalidQuery("no images chosen: give ids:1,2,3, cohort:NAME, field:NAME or a where filter")
    return np.unique(np.concatenate(chosen)).astype(np.int64)


def _one_spec(ms: Any, spec: str) -> np.ndarray:
    kind, _, rest = spec.partition(":")
    if kind == "ids":
        return _stored_ids(ms, rest)
    if kind == "cohort":
        from search import cohorts

        return np.array([m["id"] for m in cohorts.show(ms, rest.strip())["members"]], dtype=np.int64)
    where = f"{rest.strip()} = 1" if kind == "field" else rest if kind == "where" else spec
    found = allowed_ids(ms.store, [where])
    assert found is not None
    return found


def _stored_ids(ms: Any, text: str) -> np.ndarray:
    try:
        ids = np.array([int(part) for part in text.split(",") if part.strip()], dtype=np.int64)
    except ValueError:
        raise InvalidQuery(f"ids: takes comma-separated image ids, not {text!r}") from None
    known = allowed_ids(ms.store, [f"id in ({', '.join(map(str, ids.tolist()))})"]) if len(ids) else ids
    assert known is not None
    missing = sorted(set(ids.tolist()) - set(known.tolist()))
    if missing:
        raise NotFound(f"no stored image with id {', '.join(map(str, missing[:10]))}")
    return ids


def group_keys(ms: Any, ids: np.ndarray, by: str) -> np.ndarray:
    """One group key per id (object array, in ``ids`` order): the value of ``by`` (study, series, patient
    or any column/field, as ``--group-by`` takes); an image without a value is a group of its own.
    Raises InvalidQuery for an unknown column."""
    column = check_column(ms, by)
    values = group_values(ms.store, [int(i) for i in ids], column)
    return np.array([f"{column}={values[int(i)]}" if int(i) in values else f"alone={int(i)}" for i in ids],
                    dtype=object)


def all_ids(ms: Any) -> np.ndarray:
    """Every stored image id, sorted int64. Raises StoreError on an empty store."""
    ms.store.index()
    with ms.store.sessions() as session:
        return np.fromiter(session.scalars(select(Image.id).order_by(Image.id)), dtype=np.int64)


def vectors_of(ms: Any, ids: np.ndarray) -> np.ndarray:
    """(len(ids), dim) float32 stored vectors, in ``ids`` order."""
    found: dict[int, np.ndarray] = {}
    with ms.store.sessions() as session:
        for chunk_ids, _paths, matrix in stored_vectors(session, ids.tolist()):
            found.update(zip(chunk_ids, matrix, strict=True))
    return np.vstack([found[int(i)] for i in ids]).astype(np.float32)


def paths_of(ms: Any, ids: Sequence[int]) -> dict[int, str]:
    """{id: path} of the stored images among ``ids``."""
    with ms.store.sessions() as session:
        rows = session.execute(select(Image.id, Image.path).where(Image.id.in_([int(i) for i in ids])))
        return {int(i): path for i, path in rows}
