"""``report.<finding>`` names in ``--where``: an image's value is its study's report label for the finding
(``positive``, ``negative`` or ``uncertain``), compiled to an ``IN`` over the report tables, so that images
indexed after the reports were imported have it too, with nothing to copy.

Like fields, a study without a label for the finding makes every comparison false (``!=`` included);
``is null`` is true for its images."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medsearch.storage.filter_syntax import Compare, InList, IsNull, Like, Predicate
from medsearch.storage.report_models import ReportLabel
from medsearch.storage.reports import label_clause
from sqlalchemy import ColumnElement, and_, not_, or_, select, true
from sqlalchemy.orm import Session

REPORT_PREFIX = "report."

_TEXT_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}  # fmt: skip


def report_field_names(session: Session) -> set[str]:
    """``report.<finding>`` for every finding some stored report labels."""
    return {REPORT_PREFIX + finding for finding in session.scalars(select(ReportLabel.finding).distinct())}


def report_condition(expr: Predicate) -> ColumnElement[bool]:
    """The images (a clause over ``Image``) whose study's label meets ``expr`` (a predicate on a
    ``report.<finding>`` name). A number or true/false literal matches nothing (labels are text)."""
    finding = expr.name[len(REPORT_PREFIX):]
    polarity = ReportLabel.polarity
    condition: ColumnElement[bool] = true()
    if isinstance(expr, Like):
        condition = polarity.not_ilike(expr.pattern) if expr.negated else polarity.ilike(expr.pattern)
    elif isinstance(expr, Compare):
        condition = _compare(expr.op, expr.value)
    elif isinstance(expr, InList):
        parts = [_compare("!=" if expr.negated else "=", value) for value in expr.values]
        condition = and_(*parts) if expr.negated else or_(*parts)
    found = label_clause(finding, condition)
    return not_(found) if isinstance(expr, IsNull) and not expr.negated else found


def _compare(op: str, value: object) -> ColumnElement[bool]:
    if not isinstance(value, str):
        return ReportLabel.polarity.is_(None)  # never true: polarity is never null
    return _TEXT_OPS[op](ReportLabel.polarity, value.lower())
