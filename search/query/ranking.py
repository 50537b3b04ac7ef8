"""Ranked retrieval with a metadata filter applied inside the vector search, score thresholds, paging,
counting and grouping.

The filter is resolved to an id set in SQL first; FAISS then searches only those ids (an id selector), so
when at least k images pass the filter, k come back. Hits are produced best first, in growing rounds, so
thresholds and grouping read only as far down the ranking as they need.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.query.results import Result, hydrate
from medsearch.storage import queries
from medsearch.storage.chunking import chunks
from medsearch.storage.models import METADATA_COLUMNS
from medsearch.storage.store import Store

GROUP_COLUMNS = {"study": "study_instance_uid", "series": "series_instance_uid", "patient": "patient_key"}


def allowed_ids(store: Store, where: Sequence[str]) -> np.ndarray | None:
    """The ids of images matching every ``where`` expression (int64, sorted), or None for no filter.
    Remembered per store generation, so a repeated filter (paging, a filtered UI) costs no SQL until the
    next write. Raises InvalidQuery pointing at the mistake."""
    return queries.ids_where(store, where) if where else None


def group_column(store: Store, name: str) -> str:
    """The column behind a group-by / one-per ``name``: a metadata column, ``path`` or a sidecar/label
    field of that name, else the aliases study, series, patient (their DICOM UIDs / patient key). Raises
    InvalidQuery for an unknown name, with the closest known names, as an unknown ``--where`` column."""
    known = set(METADATA_COLUMNS) | {"path"} | queries.field_names(store)
    column = name if name in known else GROUP_COLUMNS.get(name, name)
    if column in known:
        return column
    names = sorted(known | set(GROUP_COLUMNS))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"known: {', '.join(names[:40])}"
    raise InvalidQuery(f"unknown column {name!r} ({hint})")


def group_keys(store: Store, ids: np.ndarray, by: str) -> np.ndarray:
    """One group key per id (object array, in ``ids`` order): the value of ``by`` (study, series, patient
    or any column/field, as ``--group-by`` takes); an image without a value is a group of its own.
    Raises InvalidQuery for an unknown column."""
    column = group_column(store, by)
    values = queries.group_values(store, [int(i) for i in ids], column)
    return np.array([f"{column}={values[int(i)]}" if int(i) in values else f"alone={int(i)}" for i in ids],
                    dtype=object)


def iter_ranked(store: Store, query: np.ndarray, allowed: np.ndarray | None = None,
                min_score: float | None = None, first_round: int = 64) -> Iterator[tuple[int, float]]:
    """(id, cosine) best first over the allowed ids, stopping below ``min_score``. ``query``: (dim,)."""
    total = store.vectors.count() if allowed is None else len(allowed)
    wanted, given = min(first_round, total), 0
    while wanted > given:
        hits = _search(store, query, wanted, allowed)
        for image_id, score in hits[given:]:
            if min_score is not None and score < min_score:
                return
            yield image_id, score
        given = len(hits)
        if given < wanted:
            return
        wanted = min(total, wanted * 4)


def _search(store: Store, query: np.ndarray, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """The top ``k`` (id, score) of one query, restricted to ``allowed`` ids inside the search."""
    scores, ids = store.vectors.search(query, k, allowed)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def take(hits: Iterator[tuple[int, float]], k: int, offset: int = 0) -> list[tuple[int, float]]:
    """Hits ``offset`` to ``offset + k``."""
    if k < 1 or offset < 0:
        raise InvalidQuery("k must be at least 1 and offset at least 0")
    out = []
    for position, hit in enumerate(hits):
        if position >= offset + k:
            break
        if position >= offset:
            out.append(hit)
    return out


def grouped(store: Store, hits: Iterator[tuple[int, float]], group_by: str, k: int,
            offset: int = 0) -> list[tuple[int, float, dict[str, Any]]]:
    """The best image of each group, best groups first: (id, score, {by, key, size, ids}). ``size``
    counts the group's matching images among those read; images without a value are groups alone. Raises
    InvalidQuery for an unknown ``group_by`` column."""
    column = group_column(store, group_by)
    groups: dict[Any, list[tuple[int, float]]] = {}
    for chunk in chunks(hits, 256):
        values = queries.group_values(store, [image_id for image_id, _score in chunk], column)
        for image_id, score in chunk:
            key = values.get(image_id, ("__alone__", image_id))
            groups.setdefault(key, []).append((image_id, score))
    ordered = list(groups.items())[offset : offset + k]
    return [(members[0][0], members[0][1], {"by": group_by, "key": None if isinstance(key, tuple) else str(key),
                                              "size": len(members), "ids": [m[0] for m in members[1:]]})
            for key, members in ordered]


def ranked_results(store: Store, query: np.ndarray, k: int, offset: int = 0, allowed: np.ndarray | None = None,
                   threshold: float | None = None, group_by: str | None = None,
                   calibration: tuple[float, float] | None = None) -> list[Result]:
    """Results for a (dim,) float32 query vector: among the ``allowed`` ids (a filter's, ``allowed_ids``;
    None: all) inside the search, thresholded, paged, grouped. When a writer deletes some of the hits
    before they are read back, the search runs again on the caught-up index (up to 3 times), so that a
    page is not left short."""
    if group_by is None:
        for _attempt in range(3):
            hits = take(iter_ranked(store, query, allowed, threshold), k, offset)
            results = hydrate(store, hits, offset, calibration)
            if len(results) == len(hits):
                break
        return results
    best = grouped(store, iter_ranked(store, query, allowed, threshold), group_by, k, offset)
    results = hydrate(store, [(i, s) for i, s, _g in best], offset, calibration)
    groups = {i: g for i, _s, g in best}
    for result in results:
        result.group = groups[result.id]
    return results
