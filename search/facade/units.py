"""Series and studies (``unit``): ranking, counting and a patient's timeline, as methods of ``Medsearch``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from medsearch.errors import NotFound
from medsearch.indexer.frames import ReadOptions
from medsearch.query.ranking import allowed_ids
from medsearch.query.scoring import threshold as threshold_of
from medsearch.query.units import UnitResult
from medsearch.storage import queries
from medsearch.storage.store import Store


class UnitsMixin:
    """The unit operations of ``Medsearch``; they build on its query vectors (declared below for the type
    checker only: ``Medsearch`` defines them)."""

    store: Store

    if TYPE_CHECKING:
        def _query(self, text: str | None, like: Sequence[str], unlike: Sequence[str],
                   min_prob: float | None) -> tuple[np.ndarray, tuple[float, float] | None]: ...

        def _passing(self, text: str | None, where: Sequence[str], min_score: float | None,
                     min_prob: float | None, like: Sequence[str], unlike: Sequence[str]
                     ) -> tuple[np.ndarray | None, Iterator[int] | None]: ...

        def query_vector(self, target: str | Path | int, read_options: ReadOptions | None = None
                         ) -> np.ndarray: ...

        def composed(self, text: str | None, like: Sequence[str] = (), unlike: Sequence[str] = ()) -> Any: ...

    def search_units(self, text: str | None = None, unit: str = "series", k: int = 10, offset: int = 0, *,
                     where: Sequence[str] = (), min_score: float | None = None, min_prob: float | None = None,
                     like: Sequence[str] = (), unlike: Sequence[str] = (), method: str | None = None,
                     sort: str = "score") -> list[UnitResult]:
        """The ``k`` best series or studies (``unit``) for a text and/or composed parts, one row each, scored
        by ``method`` (``medsearch.query.units``: ``max`` by default, ``mean``, ``top3``), restricted to units
        with a ``where`` image, above ``min_score`` / ``min_prob`` (on the unit's score); ``sort="date"``
        orders the thresholded units newest first. Raises InvalidQuery."""
        from medsearch.query import units as ranking

        method = ranking.check_unit(unit, method, ranking.TEXT_METHODS)
        query, calibration = self._query(text, like, unlike, min_prob)
        threshold = threshold_of(min_score, min_prob, calibration)
        return self._ranked_units(query, None, unit, method, k, offset, where, threshold, sort, None, calibration)

    def similar_units(self, target: str | Path | int, unit: str = "series", k: int = 10, offset: int = 0, *,
                      where: Sequence[str] = (), min_score: float | None = None, method: str | None = None,
                      sort: str = "score", read_options: ReadOptions | None = None) -> list[UnitResult]:
        """Series or studies closest to a target: an image id or a series/study UID stands for its unit (its
        slices are the query and the unit itself is left out); a file, or an image outside any unit, for
        its one vector. ``method``: ``late`` (default), ``mean``, ``max``, ``top3``.
        Raises NotFound, InvalidQuery, UnreadableFile."""
        from medsearch.query import units as ranking
        from medsearch.storage import units as stored

        method = ranking.check_unit(unit, method, ranking.SIMILAR_METHODS)
        row = stored.unit_by_uid(self.store, unit, str(target))
        if row is None and str(target).isdigit():
            row = stored.unit_of_image(self.store, unit, int(str(target)))
        if row is None:
            if isinstance(target, str) and not Path(target).expanduser().exists() and not target.isdigit():
                raise NotFound(f"No {unit} {target!r}, image id or file in the store.")
            query = self.query_vector(target, read_options)
            slices, exclude = query[np.newaxis], None
        else:
            slices = np.vstack([v for _i, v in stored.members(self.store, unit, [row.uid])[row.uid]])
            query, exclude = stored.mean_vector([v.tobytes() for v in slices]), row.uid
        return self._ranked_units(query, slices, unit, method, k, offset, where, min_score, sort, exclude, None)

    def rank_units(self, query: np.ndarray, unit: str, k: int, offset: int = 0, where: Sequence[str] = (),
                   min_score: float | None = None, method: str | None = None,
                   sort: str = "score") -> list[UnitResult]:
        """Series or studies closest to a (dim,) image vector (an upload's), as ``similar_units`` ranks them
        for a file. Raises InvalidQuery."""
        from medsearch.query import units as ranking

        method = ranking.check_unit(unit, method, ranking.SIMILAR_METHODS)
        return self._ranked_units(query, query[np.newaxis], unit, method, k, offset, where, min_score, sort,
                                  None, None)

    def _ranked_units(self, query: np.ndarray, slices: np.ndarray | None, unit: str, method: str, k: int,
                      offset: int, where: Sequence[str], threshold: float | None, sort: str, exclude: str | None,
                      calibration: tuple[float, float] | None) -> list[UnitResult]:
        from medsearch.query import units as ranking

        allowed = allowed_ids(self.store, where)

        def ranked(first: int, wanted: int) -> list[UnitResult]:
            if method == "late" and slices is not None:
                found = ranking.late_interaction(self.store, slices, unit, wanted, first, allowed, threshold, exclude)
            else:
                found = ranking.rank_units(self.store, query, unit, method, wanted, first, allowed, threshold, exclude)
            return ranking.unit_results(self.store, unit, found, query, first, calibration)

        return self._sorted(ranked, sort, threshold, k, offset)

    @staticmethod
    def _sorted(ranked: Any, sort: str, threshold: float | None, k: int, offset: int) -> list[Any]:
        """``ranked(offset, k)`` by score, or with ``sort="date"`` every thresholded result (up to
        ``SORT_LIMIT``) newest first, then paged. Raises InvalidQuery."""
        from medsearch.query import units as ranking

        ranking.check_sort(sort, threshold)
        if sort == "score":
            return list(ranked(offset, k))
        return ranking.by_date(list(ranked(0, ranking.SORT_LIMIT)), offset, k)

    def count_units(self, unit: str, text: str | None = None, *, where: Sequence[str] = (),
                    min_score: float | None = None, min_prob: float | None = None, like: Sequence[str] = (),
                    unlike: Sequence[str] = ()) -> int:
        """How many series or studies have an image passing the filter and the thresholds (a unit counts
        when its best image passes: the ``max`` score). Raises InvalidQuery."""
        from medsearch.query import units as ranking
        from medsearch.storage import units as stored

        ranking.check_unit(unit, None, ranking.TEXT_METHODS)
        allowed, passing = self._passing(text, where, min_score, min_prob, like, unlike)
        if passing is None:
            ids = allowed if allowed is not None else queries.all_ids(self.store)
        else:
            ids = np.fromiter(passing, dtype=np.int64)
        return len({uid for uid, _size in stored.units_of_images(self.store, unit, [int(i) for i in ids]).values()})

    def timeline(self, target: str | int, text: str | None = None, like: Sequence[str] = (),
                 unlike: Sequence[str] = ()) -> Any:
        """The studies of the patient of an image id, series or study UID, oldest first, each with its best
        image for the query (default: the target's own vector): ``medsearch.query.timeline.Timeline``. Only
        that patient's studies, found by the keyed patient hash. Raises NotFound, InvalidQuery."""
        from medsearch.query.timeline import timeline

        query = self.composed(text, like, unlike) if text is not None or like or unlike else None
        return timeline(self.store, target, query)
