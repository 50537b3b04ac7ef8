"""Facets for the page's filter lists: per column with few distinct values, each value and how many of the
images matching a filter have it. Typed columns come first, then sidecar/label fields, then the
``report.<finding>`` fields of report labels; a field with many
values (a saved label's probabilities, an accession number) is left out, as are columns nobody filled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from medsearch.storage.filters import compile_filter, field_names
from medsearch.storage.learn_models import SplitRecord
from medsearch.storage.models import Image, ImageField
from medsearch.storage.report_filter import REPORT_PREFIX
from medsearch.storage.reports import label_counts
from medsearch.storage.store import Store
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session, aliased

FACET_COLUMNS = ("modality", "body_part", "view_position", "patient_sex", "manufacturer")
"""The typed ``Image`` columns offered as lists."""

MAX_VALUES = 30
"""A column with more distinct values than this is not a list but something to type."""


def facets(store: Store, where: Sequence[str] = ()) -> dict[str, Any]:
    """``{"images": N, "columns": {name: {"kind", "values": [{"value", "count"}]}}, "splits": [names]}``
    over the images matching every ``where`` expression; values by count, most first; ``kind`` is
    ``text``, ``number``, ``date`` or ``bool`` (how the page quotes a value). Raises InvalidQuery."""
    with store.read_session() as session:
        clause = compile_filter(list(where), field_names(session))
        images = session.scalar(select(func.count()).select_from(Image).where(clause)) or 0
        columns = {name: facet for name in FACET_COLUMNS if (facet := _column_facet(session, name, clause))}
        columns.update(_field_facets(session, clause if where else None))
        columns.update({REPORT_PREFIX + finding: facet for finding, rows in label_counts(session, clause).items()
                        if (facet := _facet("text", rows))})
        splits = sorted(session.scalars(select(SplitRecord.name)))
    return {"images": images, "columns": columns, "splits": splits}


def _column_facet(session: Session, name: str, clause: ColumnElement[bool]) -> dict[str, Any] | None:
    column = getattr(Image, name)
    rows = session.execute(select(column, func.count()).where(clause, column.is_not(None))
                           .group_by(column).order_by(func.count().desc(), column).limit(MAX_VALUES + 1)).all()
    return _facet("text", rows)


def _field_facets(session: Session, clause: ColumnElement[bool] | None) -> dict[str, dict[str, Any]]:
    """Fields with at most ``MAX_VALUES`` distinct values among the images matching ``clause`` (None:
    all). The fields are read through an alias: the filter's own field tests are subqueries on
    ``ImageField``."""
    field = aliased(ImageField)
    matching = true() if clause is None else field.image_id.in_(select(Image.id).where(clause))
    # a row holds one of the three typed values: counted per type (PostgreSQL's COALESCE wants one type)
    distinct = (func.count(func.distinct(field.text)) + func.count(func.distinct(field.number))
                + func.count(func.distinct(field.date)))
    small = (select(field.name).where(matching).group_by(field.name).having(distinct <= MAX_VALUES)
             .order_by(field.name))
    out: dict[str, dict[str, Any]] = {}
    for name in session.scalars(small):
        rows = session.execute(
            select(field.kind, field.text, field.number, field.date, func.count())
            .where(matching, field.name == name)
            .group_by(field.kind, field.text, field.number, field.date).order_by(func.count().desc())).all()
        kinds = {kind for kind, *_ in rows}
        values = [(_value(text, number, day), count) for _kind, text, number, day, count in rows]
        facet = _facet(kinds.pop() if len(kinds) == 1 else "text", [v for v in values if v[0] is not None])
        if facet:
            out[name] = facet
    return out


def _value(text: str | None, number: float | None, day: dt.date | None) -> Any:
    if text is not None:
        return text
    if number is not None:
        return int(number) if float(number).is_integer() else number
    return day.isoformat() if day is not None else None


def _facet(kind: str, rows: Sequence[Any]) -> dict[str, Any] | None:
    """None for a column without values or with too many to list."""
    if not rows or len(rows) > MAX_VALUES:
        return None
    return {"kind": kind, "values": [{"value": value, "count": int(count)} for value, count in rows]}
