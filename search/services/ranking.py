"""What a query ranks, chosen once per query: images, or series / studies scored by a unit method. Each
strategy pages its results (``page(first, n)``) and counts the images that pass; the query service
(``medsearch.services.querying``) picks one and never asks "image or unit?" again."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from medsearch.query import units as unit_ranking
from medsearch.query.ranking import ranked_results
from medsearch.query.spec import QuerySpec
from medsearch.storage import queries
from medsearch.storage import units as stored
from medsearch.storage.store import Store

DEFAULT_TEXT_METHOD = "max"
DEFAULT_SIMILAR_METHOD = "late"


@dataclass(frozen=True)
class Prepared:
    """A query made concrete: its (dim,) unit ``vector``; the query unit's slices (n, dim) for late
    interaction, or None; the ids and the unit UID the results leave out (the query's own); the cosine
    ``threshold``; the model's (logit_scale, logit_bias) for probabilities (plain texts), or None."""

    vector: np.ndarray
    slices: np.ndarray | None = None
    own_ids: frozenset[int] = frozenset()
    own_unit: str | None = None
    threshold: float | None = None
    calibration: tuple[float, float] | None = None


class Ranking(Protocol):
    def page(self, first: int, n: int) -> list[Any]:
        """Results ``first`` .. ``first + n - 1`` by score, ranked from ``first + 1``."""

    def count(self, ids: np.ndarray) -> int:
        """How many results the passing image ``ids`` make."""


class ImageRanking:
    """Images by cosine, filtered, thresholded, optionally one per ``group_by`` group; the query's own
    images left out."""

    def __init__(self, store: Store, spec: QuerySpec, query: Prepared, allowed: np.ndarray | None) -> None:
        self.store, self.spec, self.query, self.allowed = store, spec, query, allowed

    def page(self, first: int, n: int) -> list[Any]:
        spec, query = self.spec, self.query
        own = query.own_ids
        found = ranked_results(self.store, query.vector, n + (first + len(own) if own else 0), 0 if own else first,
                               self.allowed, query.threshold, spec.group_by, query.calibration)
        if not own:
            return found
        kept = [result for result in found if result.id not in own][first : first + n]
        for rank, result in enumerate(kept, start=first + 1):
            result.rank = rank
        return kept

    def count(self, ids: np.ndarray) -> int:
        return len(ids)


class UnitRanking:
    """Series or studies (``spec.unit``), each scored by ``spec.unit_method`` (``medsearch.query.units``):
    ``late`` interaction with the query unit's slices, else by the unit's images or mean vector."""

    def __init__(self, store: Store, spec: QuerySpec, query: Prepared, allowed: np.ndarray | None) -> None:
        self.store, self.spec, self.query, self.allowed = store, spec, query, allowed
        default = DEFAULT_SIMILAR_METHOD if spec.kind == "similar" else DEFAULT_TEXT_METHOD
        self.method = spec.unit_method or default

    def page(self, first: int, n: int) -> list[Any]:
        store, unit, query = self.store, self.spec.unit, self.query
        if self.method == "late" and query.slices is not None:
            found = unit_ranking.late_interaction(store, query.slices, unit, n, first, self.allowed, query.threshold,
                                                  query.own_unit)
        else:
            found = unit_ranking.rank_units(store, query.vector, unit, self.method, n, first, self.allowed,
                                            query.threshold, query.own_unit)
        return unit_ranking.unit_results(store, unit, found, query.vector, first, query.calibration)

    def count(self, ids: np.ndarray) -> int:
        mapping = stored.units_of_images(self.store, self.spec.unit, [int(i) for i in ids])
        return len({uid for uid, _size in mapping.values()})


def ranking_for(store: Store, spec: QuerySpec, query: Prepared, allowed: np.ndarray | None) -> Ranking:
    """The strategy ``spec.unit`` asks for."""
    return UnitRanking(store, spec, query, allowed) if spec.is_unit else ImageRanking(store, spec, query, allowed)


def sorted_page(ranking: Ranking, spec: QuerySpec) -> list[Any]:
    """The page ``spec`` asks for: by score, or with ``sort="date"`` every thresholded result (up to
    ``SORT_LIMIT``) newest first, then paged."""
    if spec.sort == "score":
        return list(ranking.page(spec.offset, spec.k))
    return unit_ranking.by_date(list(ranking.page(0, unit_ranking.SORT_LIMIT)), spec.offset, spec.k)


def all_ids(store: Store, allowed: np.ndarray | None, passing: Iterator[int] | None) -> np.ndarray:
    """The image ids a count covers: those above the threshold, else those the filter allows, else all."""
    if passing is not None:
        return np.fromiter(passing, dtype=np.int64)
    return allowed if allowed is not None else queries.all_ids(store)
