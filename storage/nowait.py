"""Writes that are worth doing but never worth waiting for (a cache): one try, skipped when another
writer holds the database."""

from __future__ import annotations

from collections.abc import Callable

from medsearch.storage.store import Store
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session


def write_or_skip(store: Store, write: Callable[[Session], None]) -> bool:
    """Run ``write(session)`` in one transaction without waiting for any lock: SQLite's busy timeout is 0
    on the connection for that transaction (PostgreSQL: a 1 ms lock timeout). Returns False, having
    changed nothing, when the database is locked by another writer, read-only or otherwise refuses."""
    try:
        with store.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                waited = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
                connection.exec_driver_sql("PRAGMA busy_timeout=0")
                connection.commit()  # ends SQLAlchemy's autobegun transaction, so the session owns its own
            try:
                with Session(bind=connection) as session, session.begin():
                    if not sqlite:
                        session.execute(text("SET LOCAL lock_timeout = '1ms'"))
                    write(session)
            finally:
                if sqlite:
                    connection.exec_driver_sql(f"PRAGMA busy_timeout={int(waited or 0)}")
    except SQLAlchemyError:
        return False
    return True
