"""Querying: every search, similar-case query and count, from a ``QuerySpec``, whatever door it came
through. The spec is checked first (``QuerySpec.validate``), then against the store (``where``,
``group_by``), and only then is the model asked for anything; the ranking strategy (images or units) is
chosen once (``medsearch.services.ranking``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from medsearch.context import Context, id_or_path
from medsearch.errors import InvalidQuery, NotFound
from medsearch.language import Translation
from medsearch.language.meaning import query_parts, searched
from medsearch.query.compose import compose, parse_part
from medsearch.query.ranking import allowed_ids, group_column, iter_ranked
from medsearch.query.scoring import threshold as threshold_of
from medsearch.query.spec import QuerySpec, check_utf8
from medsearch.reports.search import report_ids
from medsearch.services.ranking import Prepared, all_ids, ranking_for, sorted_page
from medsearch.storage import queries
from medsearch.storage import units as stored


class QueryService:
    """Searches, similar cases, counts and timelines over one ``Context``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def run(self, spec: QuerySpec, vector: np.ndarray | None = None) -> list[Any]:
        """The page of results ``spec`` asks for: ``Result`` rows for images, ``UnitResult`` rows for series
        or studies. ``vector``: a (dim,) image vector to rank by instead of the spec's target (an upload).
        Raises InvalidQuery, NotFound, UnreadableFile, ModelUnavailable."""
        allowed = self.checked(spec)
        prepared = self.prepare(spec, vector)
        return sorted_page(ranking_for(self.ctx.store, spec, prepared, allowed), spec)

    def count(self, spec: QuerySpec) -> int:
        """How many images (or, with ``spec.unit``, series or studies) pass the filter and the thresholds.
        Raises InvalidQuery (also for ``group_by``: a count does not group)."""
        if spec.group_by is not None:
            raise InvalidQuery("a count does not group: leave out group_by")
        allowed = self.checked(spec)
        if spec.kind == "search" and not spec.threshold_given and not spec.is_unit:
            return self.ctx.store.vectors.count() if allowed is None else len(allowed)
        prepared = self.prepare(spec, None) if spec.threshold_given else None
        passing = None
        if prepared is not None and prepared.threshold is not None:
            passing = (i for i, _s in iter_ranked(self.ctx.store, prepared.vector, allowed, prepared.threshold,
                                                  first_round=1024))
        ids = all_ids(self.ctx.store, allowed, passing)
        return ranking_for(self.ctx.store, spec, prepared or Prepared(np.empty(0)), allowed).count(ids)

    def without_unit(self, spec: QuerySpec) -> int:
        """How many images ``spec``'s filter allows that belong to no unit of ``spec.unit`` (files without a
        series or study UID): a series or study query leaves them out. 0 for an image query. Raises
        InvalidQuery (a bad filter)."""
        if not spec.is_unit:
            return 0
        lacking = stored.ids_without_unit(self.ctx.store, spec.unit)
        allowed = self.allowed(spec)
        return len(lacking) if allowed is None else int(np.isin(lacking, allowed).sum())

    def checked(self, spec: QuerySpec) -> np.ndarray | None:
        """Validate ``spec`` alone and against the store; the ids its ``where`` allows (None: no filter).
        Raises InvalidQuery pointing at the mistake."""
        spec.validate()
        if spec.group_by is not None:
            group_column(self.ctx.store, spec.group_by)
        return self.allowed(spec)

    def allowed(self, spec: QuerySpec) -> np.ndarray | None:
        """The ids ``spec``'s ``where`` and ``report`` allow (int64, sorted; None: no filter). Raises
        InvalidQuery."""
        allowed = allowed_ids(self.ctx.store, spec.where)
        if spec.report is None:
            return allowed
        matched = report_ids(self.ctx.store, spec.report, spec.report_polarity)
        return matched if allowed is None else np.intersect1d(allowed, matched, assume_unique=True)

    def prepare(self, spec: QuerySpec, vector: np.ndarray | None) -> Prepared:
        """The query vector of ``spec`` (or ``vector``), what it leaves out, and its threshold."""
        if vector is not None:
            return Prepared(vector, vector[np.newaxis], threshold=spec.min_score)
        if spec.kind == "similar":
            return self._similar(spec)
        query, calibration = self.composed(spec)
        return Prepared(query, threshold=threshold_of(spec.min_score, spec.min_prob, calibration),
                        calibration=calibration)

    def composed(self, spec: QuerySpec) -> tuple[np.ndarray, tuple[float, float] | None]:
        """The unit (dim,) vector of a search's parts, and the model's calibration for a plain text."""
        parts = query_parts(spec.parts(), self.ctx.translator, self.ctx.tokenizer())  # negated findings: unlike
        plain_text = len(parts) == 1 and parts[0].kind == "text"
        if spec.min_prob is not None and not plain_text:
            raise InvalidQuery("min_prob needs a plain text query: the model's probability is per text, and this "
                               "query is composed (its negated findings are parts of their own)")
        self.ctx.store.vectors.load()
        if any(part.kind != "id" for part in parts):
            self.ctx.check_model(load=False)  # loaded only for a text not cached or a file
        query = compose(parts, self.ctx.text_vectors, lambda part: self.ctx.vector_of(
            int(part.value) if part.kind == "id" else part.value))
        return query, (self.ctx.calibration() if plain_text else None)

    def _similar(self, spec: QuerySpec) -> Prepared:
        """A similar-case query: a series/study UID or an image id stands for its unit (with ``unit``), else
        the target's one vector; the target's own images (or unit) are left out unless ``include_self``."""
        target = str(spec.target)
        if spec.is_unit:
            row = stored.unit_by_uid(self.ctx.store, spec.unit, target)
            if row is None and target.isdigit():
                row = stored.unit_of_image(self.ctx.store, spec.unit, int(target))
            if row is not None:
                slices = np.vstack([v for _i, v in stored.members(self.ctx.store, spec.unit, [row.uid])[row.uid]])
                mean = stored.mean_vector([v.tobytes() for v in slices])
                return Prepared(mean, slices, own_unit=row.uid, threshold=spec.min_score)
            if not Path(target).expanduser().exists() and not target.isdigit():
                raise NotFound(f"No {spec.unit} {target!r}, image id or file in the store.")
        query = self.ctx.vector_of(target)
        own = frozenset() if spec.include_self or spec.is_unit else self._own_ids(target)
        return Prepared(query, query[np.newaxis], own_ids=own, threshold=spec.min_score)

    def _own_ids(self, target: str) -> frozenset[int]:
        """The stored ids of a query target: the id itself, or the frames of an indexed file."""
        image_id, path = id_or_path(target)
        if image_id is not None:
            return frozenset({image_id})
        return frozenset(queries.ids_of_path(self.ctx.store, str(path.resolve()))) if path.exists() else frozenset()

    def searched_as(self, text: str) -> Translation:
        """What a search's text part (``"폐렴@0.5"``: its text, without the weight) is embedded as (its
        negated findings apart: "pneumonia; not: pneumothorax"), and the words not understood; image and id
        parts are kept as given. Raises InvalidQuery."""
        if not text.strip():
            raise InvalidQuery("the search text is empty")
        check_utf8(text)
        part = parse_part(text)
        if part.kind != "text":
            return Translation(text, text)
        return searched(part.value, self.ctx.translator, self.ctx.tokenizer())

    def timeline(self, target: str | int, spec: QuerySpec | None = None) -> Any:
        """The studies of the patient of an image id, series or study UID, oldest first, each with its best
        image for ``spec``'s query (default: the target's own vector): ``medsearch.query.timeline.Timeline``.
        Raises NotFound, InvalidQuery."""
        from medsearch.query.timeline import timeline

        query = self.composed(spec.validate())[0] if spec is not None else None
        return timeline(self.ctx.store, target, query)
