"""Bring an older store's vectors to the form written now, in place: each moves from the ``images`` row
into ``image_vectors`` (``medsearch.storage.models.ImageVector``) in the 12-bit form
(``medsearch.storage.vector_codec``):
float32 blobs shrink to three eighths, float16 ones to three quarters, 12-bit ones move as they are.

Batch by batch, each in its own transaction, in id order: killed half way, every vector is whole in one
place or the other (``Image.embedding`` reads both), and running it again moves the rest. The values move by
the 12-bit rounding at most (~1e-4 of cosine), so the generation is not bumped: an index built before keeps
serving the same ids, and the next rebuild or ``reindex`` reads the new form. The emptied images rows
leave their pages two thirds empty and the vectors table grows the file (10 M images: 26.4 -> 44.8 GB in
7.7 minutes); compacting it then (``_vacuum``: 1.8 minutes, down to 25.9 GB, on 32 KB pages) needs room
for a copy of the rows and no other process using the database.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medsearch.errors import StoreError
from medsearch.storage import vector_codec
from medsearch.storage.database import PAGE_SIZE
from medsearch.storage.models import Image, ImageVector
from medsearch.storage.snapshot import replace_durably
from medsearch.storage.store import DB_FILE, Store
from sqlalchemy import func, insert, select, update

BATCH = 2_000
VACUUM_FILE = f"{DB_FILE}.tmp-vacuum"
"""The compacted copy while it is written; ``medsearch check`` reports one a kill left behind."""
BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")


@dataclass
class ShrinkReport:
    """``converted``: vectors moved to the vectors table in the 12-bit form; ``vacuumed``: whether SQLite gave
    the space back (else ``vacuum_note`` says why not); ``bytes_before``/``bytes_after``: the SQLite file's
    size."""

    converted: int = 0
    vacuumed: bool = False
    vacuum_note: str = ""
    bytes_before: int = 0
    bytes_after: int = 0


def shrink_vectors(store: Store, progress: Callable[[int, int], None] | None = None,
                   batch: int = BATCH, compact: bool = False) -> ShrinkReport:
    """Move every vector of ``store`` (writable) still in its images row to the vectors table in the 12-bit
    form, then compact a SQLite database when any moved (or ``compact``: a run after one that could not).
    ``progress(moved so far, to move)`` after each batch. Raises StoreError when empty."""
    record = store.model_record()
    if record is None:
        raise StoreError(f"The store at {store.directory} is empty; nothing to upgrade.")
    database = store.directory / DB_FILE
    sqlite = store.engine.dialect.name == "sqlite" and database.exists()
    report = ShrinkReport(bytes_before=_database_bytes(store) if sqlite else 0)
    older, last = older_form(), 0
    with store.read_session() as session:
        total = session.scalar(select(func.count()).select_from(Image).where(older)) or 0
    while total:
        with store.write_session() as session:
            rows = session.execute(select(Image.id, Image.legacy_embedding).where(Image.id > last, older)
                                   .order_by(Image.id).limit(batch)).all()
            if not rows:
                break
            session.execute(insert(ImageVector), [{"id": image_id, "embedding": _current(blob)}
                                                  for image_id, blob in rows])
            session.execute(update(Image), [{"id": image_id, "legacy_embedding": b""} for image_id, _ in rows])
        last, report.converted = rows[-1][0], report.converted + len(rows)
        if progress:
            progress(report.converted, total)
    if sqlite and (report.converted or compact):
        _vacuum(store, report)
    report.bytes_after = _database_bytes(store) if sqlite else 0
    return report


def older_form() -> Any:
    """The SQL condition of an image whose vector is not where and how vectors are written now."""
    return func.length(Image.legacy_embedding) > 0


def _current(blob: bytes | None) -> bytes:
    """``blob`` (one ``older_form`` selects: never empty) in the 12-bit form: as it is when it already is."""
    assert blob
    return blob if vector_codec.form(blob) == "q12" else vector_codec.encode(vector_codec.decode(blob))


def _database_bytes(store: Store) -> int:
    """The SQLite database's size on disk, with its write-ahead log."""
    return sum(path.stat().st_size for path in store.directory.glob(f"{DB_FILE}*") if path.is_file())


def _vacuum(store: Store, report: ShrinkReport) -> None:
    """Write a compacted copy of the database (``VACUUM INTO``, on ``PAGE_SIZE`` pages) beside it and rename
    it over it, every other process kept out meanwhile by an exclusive lock. It needs room for the rows
    only, not for the file's empty space (a 10 M store just moved: 44.8 GB on disk, 25.9 GB of rows). A
    disk that fills up, or another process with the store open, leaves the database as it was."""
    database, copy = store.directory / DB_FILE, store.directory / VACUUM_FILE
    store.engine.dispose()  # the pooled connections of this process: leaving WAL mode wants none open
    connection = sqlite3.connect(database, isolation_level=None, timeout=1)
    try:
        try:
            connection.execute("PRAGMA journal_mode=DELETE").fetchall()  # refused while another process has it
            connection.execute("PRAGMA locking_mode=EXCLUSIVE")
            connection.execute("BEGIN EXCLUSIVE")
            connection.execute("COMMIT")  # the lock stays (exclusive locking mode) until the connection closes
            connection.execute(f"PRAGMA page_size={PAGE_SIZE}")
            copy.unlink(missing_ok=True)
            connection.execute("VACUUM INTO ?", (str(copy),))
            with open(copy, "rb") as written:
                os.fsync(written.fileno())
        except sqlite3.OperationalError as error:
            copy.unlink(missing_ok=True)
            report.vacuum_note = ("VACUUM skipped: another process has the database open; run `medsearch upgrade "
                                  "--vectors-only` again when no server is running" if error.sqlite_errorname in BUSY
                                  else f"VACUUM skipped: {error} (a compacted copy is written beside the "
                                  "database); the free pages are reused by new images meanwhile")
            return
        replace_durably(copy, database)
        report.vacuumed = True
    finally:
        connection.close()
