"""Engines and sessions. SQLite gets WAL, foreign keys and a busy timeout on every connection, and a new
database pages of ``PAGE_SIZE`` bytes; any other URL (PostgreSQL) is used as it is."""

from __future__ import annotations

from typing import Any

from medsearch.storage import (  # noqa: F401  (register their tables on Base)
    cohort_models,
    field_version,
    learn_models,
    report_models,
    source_models,
    thumbnail_models,
    unit_models,
)
from medsearch.storage.models import Base
from medsearch.storage.schema import add_missing_columns, add_missing_indexes
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """An engine for ``url``; the schema is created when missing, and an older one gains the new
    tables, columns and indexes (``medsearch.storage.schema``)."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    add_missing_indexes(engine)
    return engine


PAGE_SIZE = 32_768
"""SQLite page size of new stores. A page holds whole rows only and leaves the rest of it empty: a stored
vector (1.74 KB in 12 bits) fills 4 KB pages two to a page, 32 KB pages eighteen (0.07 KB per vector
left empty), and an image row with its metadata (~0.9 KB in the scale benchmark's DICOM rows) fills them
as well (10 M images: 2.56 KB per image in all, ``benchmarks/bench_scale.py``). It takes effect only before
the file's first table (``medsearch.storage.shrink`` moves older stores)."""


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory of ``engine``; its sessions bump the fields version on every field write."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    field_version.watch(sessions)
    return sessions
