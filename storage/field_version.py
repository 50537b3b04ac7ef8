"""The fields version: a counter in ``store_info`` bumped in the same transaction as every write to
``image_fields`` (sidecar imports, saved zero-shot scores, probe and split fields, fields carried over
on re-index), from any writer, present or future, because the bump is a session event, not a call each
writer must remember.

Image writes bump the store's generation; field writes do not. What a reader remembers about fields (the
id sets of ``medsearch.storage.queries.ids_where``) is therefore keyed by (generation, fields version), both read
in the reader's own transaction, so the next query of every process sees a field written by another.
Stores made before the counter have NULL there, read as 0.
"""

from __future__ import annotations

from typing import Any

from medsearch.storage.models import ImageField, StoreInfo
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

FIELDS_TABLE = ImageField.__tablename__


def watch(sessions: sessionmaker[Session]) -> None:
    """Make every session of ``sessions`` bump the fields version when it writes ``image_fields``, by a
    DML statement (``insert/update/delete(ImageField)``) or by flushing ``ImageField`` objects."""
    event.listen(sessions, "do_orm_execute", _after_field_statement)
    event.listen(sessions, "before_flush", _before_field_flush)


def current(session: Session) -> tuple[int, int]:
    """(generation, fields version) as this session's transaction sees them; (0, 0) for an empty store."""
    row = session.execute(select(StoreInfo.generation, func.coalesce(StoreInfo.fields_version, 0))).first()
    return (0, 0) if row is None else (int(row[0] or 0), int(row[1]))


def bump(session: Session) -> None:
    """Inside a write transaction: add one to the fields version (no-op on a store with no model record)."""
    session.connection().execute(
        update(StoreInfo).values(fields_version=func.coalesce(StoreInfo.fields_version, 0) + 1))


def _after_field_statement(state: ORMExecuteState) -> None:
    written = getattr(state.statement, "table", None)  # an annotated copy of the table: compare by name
    if (state.is_insert or state.is_update or state.is_delete) and getattr(written, "name", None) == FIELDS_TABLE:
        bump(state.session)


def _before_field_flush(session: Session, _context: Any, _instances: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, ImageField) for item in changed):
        bump(session)
