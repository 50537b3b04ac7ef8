"""Ranking series and studies ("units") instead of images.

Three ways to score a unit for a query vector ``q`` (all cosines of unit vectors):

- ``mean``: cosine of ``q`` to the unit's normalised mean vector (``medsearch.storage.units``' own index).
- ``max``: its best slice, ``max_i <q, v_i>``, from the image index: hits come best first, so the first
  ``k`` distinct units met are exactly the top ``k``.
- ``top3``: the mean of its 3 best slices (all of them when it has fewer), exact: the image stream stops
  once ``k`` complete units score at least as well as any unit could still reach.

Series to series, ``late`` (late interaction) re-ranks candidates by the mean over the query unit's
slices of each one's best-matching slice in the candidate: ``1/n sum_i max_j <q_i, c_j>``.
Every image stream is bounded by ``MAX_IMAGES`` hits; past that the remaining candidates are scored
exactly from their stored vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import islice
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.query.ranking import iter_ranked
from medsearch.storage import queries, units
from medsearch.storage.chunking import chunks
from medsearch.storage.store import Store

MAX_IMAGES = 50_000
"""The most image hits one unit ranking reads from the image index."""
PROBE_SLICES = 16
"""The most query slices whose nearest images add late-interaction candidates."""


@dataclass
class UnitResult:
    """One series or study. ``image_id``/``path``/``image_score``: its best-scoring image for the query;
    ``ids``: all its images."""

    rank: int
    unit: str
    key: str
    score: float
    size: int
    image_id: int
    path: str
    image_score: float
    study_instance_uid: str | None = None
    modality: str | None = None
    study_date: str | None = None
    description: str | None = None
    ids: list[int] = field(default_factory=list)
    probability: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["probability"] is None:
            del data["probability"]
        return data


def rank_units(store: Store, query: np.ndarray, kind: str, method: str, k: int, offset: int = 0,
               allowed: np.ndarray | None = None, threshold: float | None = None,
               exclude: str | None = None) -> list[tuple[str, float]]:
    """The ``k`` best (uid, score) units of ``kind`` for a (dim,) query, after ``offset``, restricted to
    units with an ``allowed`` image, above ``threshold``, never ``exclude``."""
    if k < 1 or offset < 0:
        raise InvalidQuery("k must be at least 1 and offset at least 0")
    wanted = k + offset + (exclude is not None)
    if method == "mean":
        ranked = _by_mean(store, query, kind, wanted, allowed)
    else:
        ranked = _by_slices(store, query, kind, wanted, allowed, 1 if method == "max" else 3)
    ranked = [(uid, s) for uid, s in ranked if uid != exclude and (threshold is None or s >= threshold)]
    return ranked[offset : offset + k]


def _by_mean(store: Store, query: np.ndarray, kind: str, wanted: int,
             allowed: np.ndarray | None) -> list[tuple[str, float]]:
    store.unit_vectors.load(kind)
    selector = None if allowed is None else _unit_ids_of(store, kind, allowed)
    if selector is not None and len(selector) == 0:
        return []
    scores, ids = store.unit_vectors.search(kind, query, wanted, selector)
    found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
    rows = units.units_by_id(store, [i for i, _s in found])
    return [(rows[i].uid, s) for i, s in found if i in rows]


def _unit_ids_of(store: Store, kind: str, allowed: np.ndarray) -> np.ndarray:
    mapping = units.units_of_images(store, kind, [int(i) for i in allowed])
    return units.unit_ids_of_uids(store, kind, {uid for uid, _size in mapping.values()})


def _by_slices(store: Store, query: np.ndarray, kind: str, wanted: int, allowed: np.ndarray | None,
               top: int) -> list[tuple[str, float]]:
    """Units by the mean of their ``top`` best slices, from the image stream (see the module)."""
    seen: dict[str, list[float]] = {}
    need: dict[str, int] = {}
    last = 1.0
    for chunk in chunks(islice(iter_ranked(store, query, allowed, first_round=256), MAX_IMAGES), 256):
        mapping = units.units_of_images(store, kind, [i for i, _s in chunk])
        for image_id, score in chunk:
            if image_id in mapping:
                uid, size = mapping[image_id]
                need.setdefault(uid, min(top, size))
                if len(seen.setdefault(uid, [])) < need[uid]:
                    seen[uid].append(score)
            last = score
        if _settled(seen, need, last, wanted):
            break
    else:
        _complete_exactly(store, query, kind, seen, need)
    done = [(uid, float(np.mean(s))) for uid, s in seen.items() if len(s) == need[uid]]
    return sorted(done, key=lambda pair: -pair[1])[:wanted]


def _settled(seen: dict[str, list[float]], need: dict[str, int], last: float, wanted: int) -> bool:
    """True when ``wanted`` complete units score at least the bound of every other unit."""
    complete = sorted((float(np.mean(s)) for uid, s in seen.items() if len(s) == need[uid]), reverse=True)
    if len(complete) < wanted:
        return False
    bounds = [(sum(s) + (need[uid] - len(s)) * last) / need[uid] for uid, s in seen.items() if len(s) < need[uid]]
    return complete[wanted - 1] >= max([last, *bounds])


def _complete_exactly(store: Store, query: np.ndarray, kind: str, seen: dict[str, list[float]],
                      need: dict[str, int]) -> None:
    """Score the units still incomplete when the stream ended (or hit its bound) from their vectors."""
    partial = [uid for uid, s in seen.items() if len(s) < need[uid]]
    for uid, rows in units.members(store, kind, partial).items():
        scores = np.sort(np.vstack([v for _i, v in rows]) @ query)[::-1]
        seen[uid] = [float(s) for s in scores[: need[uid]]]
        need[uid] = len(seen[uid])


def late_interaction(store: Store, slices: np.ndarray, kind: str, k: int, offset: int = 0,
                     allowed: np.ndarray | None = None, threshold: float | None = None,
                     exclude: str | None = None, candidates: int = 64, per_slice: int = 8) -> list[tuple[str, float]]:
    """Units ranked by late interaction with the (n, dim) query ``slices``, re-ranked exactly from their
    stored vectors. Candidates: the best ``max(candidates, 4 (k + offset))`` by mean vector, plus the
    units of the ``per_slice`` nearest images of up to ``PROBE_SLICES`` evenly spaced query slices (one
    batched image-index search)."""
    mean = units.mean_vector([np.ascontiguousarray(s, dtype=np.float32).tobytes() for s in slices])
    pool = max(candidates, 4 * (k + offset))
    uids = {uid for uid, _s in _by_mean(store, mean, kind, pool, allowed)}
    probes = slices[np.linspace(0, len(slices) - 1, min(len(slices), PROBE_SLICES)).astype(int)]
    _scores, near = store.vectors.search(probes, per_slice, allowed)
    uids |= {uid for uid, _size in units.units_of_images(store, kind, sorted({int(i) for i in near.ravel() if i >= 0}))
             .values()}
    uids.discard(exclude or "")
    scored = [(uid, float(np.mean(np.max(slices @ np.vstack([v for _i, v in rows]).T, axis=1))))
              for uid, rows in units.members(store, kind, sorted(uids)).items() if rows]
    scored = sorted((p for p in scored if threshold is None or p[1] >= threshold), key=lambda p: -p[1])
    return scored[offset : offset + k]


def unit_results(store: Store, kind: str, ranked: list[tuple[str, float]], query: np.ndarray,
                 offset: int = 0, calibration: tuple[float, float] | None = None) -> list[UnitResult]:
    """Results for ranked (uid, score) units: each with its summary, its best image for ``query`` and
    its image ids; units emptied meanwhile are dropped."""
    from medsearch.query.scoring import probability

    uids = [uid for uid, _s in ranked]
    members = units.members(store, kind, uids)
    ids = [int(i) for i in units.unit_ids_of_uids(store, kind, set(uids))]
    rows = {row.uid: row for row in units.units_by_id(store, ids).values()}
    best = {uid: max(m, key=lambda pair: float(pair[1] @ query)) for uid, m in members.items() if m}
    paths = queries.paths_by_id(store, [image_id for image_id, _v in best.values()])
    results: list[UnitResult] = []
    for uid, score in ranked:
        if uid not in best or uid not in rows:
            continue
        row, (image_id, vector) = rows[uid], best[uid]
        results.append(UnitResult(
            offset + len(results) + 1, kind, uid, score, row.size, image_id, paths.get(image_id, ""),
            float(vector @ query), row.study_instance_uid, row.modality,
            row.study_date.isoformat() if row.study_date else None, row.description,
            [i for i, _v in members[uid]], float(probability(score, *calibration)) if calibration else None))
    return results


SORT_LIMIT = 10_000
"""The most thresholded hits ``sort="date"`` orders."""


def by_date(results: list[Any], offset: int = 0, k: int | None = None) -> list[Any]:
    """Results (``Result`` or ``UnitResult``) newest study first, undated last, then paged and ranked
    again from ``offset + 1``."""
    def date(result: Any) -> str:
        return (result.study_date if isinstance(result, UnitResult) else result.metadata.get("study_date")) or ""

    ordered = sorted(results, key=date, reverse=True)[offset : None if k is None else offset + k]
    for position, result in enumerate(ordered):
        result.rank = offset + position + 1
    return ordered
