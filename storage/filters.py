"""The ``--where`` filter language compiled to a SQLAlchemy boolean clause in which every value is a bound
parameter. The syntax (grammar, AST, ``parse``, ``render``) lives in ``medsearch.storage.filter_syntax``.

Names: the typed ``Image`` columns of ``TYPED_COLUMNS`` (also matched case-insensitively), else an
``ImageField`` (sidecar value or saved label score) among ``known_fields``; a typed column wins a clash.

Missing values: a null column, or an image without a row for the field, makes every comparison false,
``!=``, ``not in`` and ``not like`` included. The language is therefore two-valued, and ``not (x > 1)``
is true for images without ``x``. Only ``is null`` / ``is not null`` test for absence.

Typing: on typed columns a literal must fit the column (a quoted number is accepted for a number column;
dates are 'YYYY-MM-DD'; ``indexed_at`` takes an ISO date or date-time, read as UTC), else ``InvalidQuery``.
A field's kind is not known when compiling, so the literal chooses: a number compares ``number`` (bools
are stored there as 0/1, so ``true``/``false`` compare 1/0), a string compares ``text``, and also ``date``
if it reads as 'YYYY-MM-DD'. A field of another kind than the literal does not match.
``in`` is the ``or`` of ``=``; ``not in`` is the ``and`` of ``!=``. ``true``/``false`` take only ``=``/``!=``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.storage import field_version
from medsearch.storage.filter_syntax import (
    And,
    Compare,
    Expr,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    Predicate,
    Value,
    parse,
    read_number,
    referenced_names,
    render,
    render_value,
    syntax_error,
)
from medsearch.storage.models import METADATA_COLUMNS, Image, ImageField
from medsearch.storage.report_filter import REPORT_PREFIX, report_condition, report_field_names
from sqlalchemy import ColumnElement, and_, exists, not_, or_, select, true
from sqlalchemy.orm import Session

__all__ = [
    "TYPED_COLUMNS",
    "And",
    "Compare",
    "Expr",
    "FilterCache",
    "InList",
    "IsNull",
    "Like",
    "Not",
    "Or",
    "compile_filter",
    "field_names",
    "parse",
    "referenced_names",
    "render",
]

TYPED_COLUMNS: tuple[str, ...] = ("id", "path", "indexed_at", *METADATA_COLUMNS)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def field_names(session: Session) -> set[str]:
    """The distinct ``ImageField`` names in the store and the ``report.<finding>`` names of its report
    labels (``medsearch.storage.report_filter``): what ``compile_filter`` takes as ``known_fields``."""
    return set(session.scalars(select(ImageField.name).distinct())) | report_field_names(session)


def _as_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if _DATE.fullmatch(value) else None
    except ValueError:
        return None


def _as_datetime(value: str) -> dt.datetime | None:
    if not _DATE.match(value):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _column_kind(name: str) -> str:
    """number, text, date, datetime or bool, from the SQLAlchemy type of the ``Image`` column."""
    python_type = Image.__table__.c[name].type.python_type
    kinds = {bool: "bool", int: "number", float: "number", str: "text", dt.date: "date"}
    return "datetime" if python_type is dt.datetime else kinds[python_type]


class _Compiler:
    def __init__(self, known_fields: Collection[str], text: str | None) -> None:
        self.fields, self.text = known_fields, text

    def error(self, message: str, pos: int) -> InvalidQuery:
        return syntax_error(message, self.text, pos)

    def compile(self, expr: Expr) -> ColumnElement[bool]:
        if isinstance(expr, And):
            return and_(*(self.compile(item) for item in expr.items))
        if isinstance(expr, Or):
            return or_(*(self.compile(item) for item in expr.items))
        if isinstance(expr, Not):
            return not_(self.compile(expr.operand))
        if isinstance(expr, Compare) and (isinstance(expr.value, bool) and expr.op not in ("=", "!=")):
            raise self.error("true and false can only be compared with = or !=", expr.pos)
        column = self.resolve(expr.name, expr.pos)
        return self.field(expr) if column is None else self.column(column, expr)

    def resolve(self, name: str, pos: int) -> str | None:
        """The typed column ``name`` stands for, or None for a field. Raises InvalidQuery when unknown."""
        if name in TYPED_COLUMNS:
            return name
        if name.lower() in TYPED_COLUMNS and name not in self.fields:
            return name.lower()
        if name in self.fields:
            return None
        known = sorted({*TYPED_COLUMNS, *self.fields})
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else f"known: {', '.join(known[:40])}"
        raise self.error(f"unknown column {name!r} ({hint})", pos)

    def column(self, name: str, expr: Predicate) -> ColumnElement[bool]:
        column, kind = getattr(Image, name), _column_kind(name)
        if isinstance(expr, IsNull):
            null_test: ColumnElement[bool] = column.is_not(None) if expr.negated else column.is_(None)
            return null_test
        if isinstance(expr, Like):
            if kind != "text":
                raise self.error(f"'like' needs a text column; {name} is a {kind} column", expr.pos)
            condition = column.not_ilike(expr.pattern) if expr.negated else column.ilike(expr.pattern)
        elif isinstance(expr, Compare):
            if kind == "bool" and expr.op not in ("=", "!="):
                raise self.error(f"{name} is true/false: compare it with = or !=", expr.pos)
            condition = _OPS[expr.op](column, self.coerce(name, kind, expr.value, expr.value_pos))
        else:
            positions = expr.value_pos or (expr.pos,) * len(expr.values)
            values = [self.coerce(name, kind, v, p) for v, p in zip(expr.values, positions, strict=True)]
            condition = column.not_in(values) if expr.negated else column.in_(values)
        nullable = Image.__table__.c[name].nullable
        return and_(column.is_not(None), condition) if nullable else condition

    def coerce(self, name: str, kind: str, value: Value, pos: int) -> object:
        """The literal as the column's Python type. Raises InvalidQuery when it does not fit."""
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise self.error(f"{name} is true/false; compare it with true or false", pos)
        if kind == "number" and not isinstance(value, bool):
            number = read_number(value.strip()) if isinstance(value, str) else value
            if number is not None:
                return number
            raise self.error(f"{name} is a number column; {render_value(value)} is not a number", pos)
        if kind == "text" and isinstance(value, str):
            return value
        if kind in ("date", "datetime") and isinstance(value, str):
            moment = _as_date(value) if kind == "date" else _as_datetime(value)
            if moment is not None:
                return moment
        expected = {"text": "a quoted text", "date": "a date 'YYYY-MM-DD'", "datetime": "a date or date-time"}
        raise self.error(f"{name} is a {kind} column: expected {expected.get(kind, 'a number')}", pos)

    def field(self, expr: Predicate) -> ColumnElement[bool]:
        """An EXISTS over the image's ``ImageField`` row of that name (NOT EXISTS for ``is null``); a
        ``report.<finding>`` name is its study's report label instead."""
        if expr.name.startswith(REPORT_PREFIX):
            return report_condition(expr)
        condition: ColumnElement[bool] = true()
        if isinstance(expr, Like):
            condition = (ImageField.text.not_ilike if expr.negated else ImageField.text.ilike)(expr.pattern)
        elif isinstance(expr, Compare):
            condition = _field_compare(expr.op, expr.value)
        elif isinstance(expr, InList):
            parts = [_field_compare("!=" if expr.negated else "=", value) for value in expr.values]
            condition = and_(*parts) if expr.negated else or_(*parts)
        found = exists().where(ImageField.image_id == Image.id, ImageField.name == expr.name, condition)
        return ~found if isinstance(expr, IsNull) and not expr.negated else found


def _field_compare(op: str, value: Value) -> ColumnElement[bool]:
    """``value op literal`` on the value column(s) the literal's type can meet."""
    compare: Callable[[Any, Any], ColumnElement[bool]] = _OPS[op]
    if isinstance(value, bool):
        return compare(ImageField.number, 1.0 if value else 0.0)
    if isinstance(value, int | float):
        return compare(ImageField.number, value)
    day = _as_date(value)
    text = compare(ImageField.text, value)
    return text if day is None else or_(text, compare(ImageField.date, day))


def compile_filter(
    expr_or_text: str | Expr | Sequence[str | Expr], known_fields: Collection[str]
) -> ColumnElement[bool]:
    """A boolean clause over ``Image`` (use it in ``select(Image...).where(...)``) with every value bound.

    Several expressions (repeated ``--where``) are joined with ``and``; none gives ``true()``.
    ``known_fields`` are the field names that exist (``field_names(session)``).
    Raises ``InvalidQuery`` for a syntax error, an unknown name, or a literal of the wrong type; its
    ``position`` is the 0-based offset in the expression at fault.
    """
    items = [expr_or_text] if isinstance(expr_or_text, str | Expr) else list(expr_or_text)
    clauses = []
    for item in items:
        text = item if isinstance(item, str) else None
        expr = parse(item) if isinstance(item, str) else item
        clauses.append(_Compiler(known_fields, text).compile(expr))
    return and_(*clauses) if clauses else true()


FilterKey = tuple[tuple[str, ...], int, int]
"""(the ``where`` expressions, the generation, the fields version): what an id set is valid for."""


class FilterCache:
    """The id sets of recent filters, held by the store (``store.filter_cache``), keyed by the filter, the
    generation and the fields version (``medsearch.storage.field_version``), so that a repeated filter costs
    no SQL until the next image or field write by any process. Bounded by the ids held, oldest dropped;
    safe to share between threads."""

    def __init__(self, max_ids: int = 4_000_000) -> None:
        self.max_ids = max_ids
        self._entries: OrderedDict[FilterKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def ids(self, session: Session, where: Sequence[str]) -> np.ndarray:
        """The ids (int64, sorted) of images matching every ``where`` expression, read in ``session``'s
        transaction (begun by the caller) or remembered from it. Raises InvalidQuery pointing at the
        mistake."""
        key = (tuple(where), *field_version.current(session))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        clause = compile_filter(list(where), field_names(session))
        ids = np.fromiter(session.scalars(select(Image.id).where(clause).order_by(Image.id)), dtype=np.int64)
        with self._lock:
            self._entries[key] = ids
            while sum(len(v) for v in self._entries.values()) > self.max_ids and len(self._entries) > 1:
                self._entries.popitem(last=False)
        return ids

    def clear(self) -> None:
        """Forget every id set (frees memory; a field write no longer needs it, the fields version keys it)."""
        with self._lock:
            self._entries.clear()
