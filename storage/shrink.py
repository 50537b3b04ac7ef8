"""Store the vectors of an older store in the 12-bit form in place (``storage.vector_codec``): float32
blobs shrink to three eighths, float16 ones to three quarters.

Batch by batch, each in its own transaction, in id order: killed half way, every vector is whole in one
form or another (all are read), and running it again converts the rest. The values move by the 12-bit
rounding (at most ~1e-4 of cosine), so the generation is not bumped: an index built before keeps serving the
same ids, and the next rebuild or ``reindex`` reads the new form. SQLite keeps the freed pages for later
rows until ``VACUUM`` gives them back to the disk (and moves the file to 32 KB pages, which an image row
fills better); that needs as much free space as the database, and no other process using it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import LargeBinary, func, literal, select, text, update
from sqlalchemy.exc import OperationalError

from storage import vector_codec
from storage.database import PAGE_SIZE
from storage.errors import StoreError
from storage.models import Image
from storage.store import DB_FILE, Store

BATCH = 2_000


@dataclass
class ShrinkReport:
    """``converted``: vectors rewritten in the 12-bit form; ``vacuumed``: whether SQLite gave the space back (else
    ``vacuum_note`` says why not); ``bytes_before``/``bytes_after``: the SQLite file's size."""

    converted: int = 0
    vacuumed: bool = False
    vacuum_note: str = ""
    bytes_before: int = 0
    bytes_after: int = 0


def shrink_vectors(store: Store, progress: Callable[[int], None] | None = None,
                   batch: int = BATCH) -> ShrinkReport:
    """Rewrite every vector of ``store`` (writable) not in the 12-bit form in it, then VACUUM a SQLite database when
    the disk has room. ``progress(converted so far)`` after each batch. Raises StoreError when empty."""
    record = store.model_record()
    if record is None:
        raise StoreError(f"The store at {store.directory} is empty; nothing to upgrade.")
    database = store.directory / DB_FILE
    sqlite = store.engine.dialect.name == "sqlite" and database.exists()
    report = ShrinkReport(bytes_before=_database_bytes(store) if sqlite else 0)
    older, last = older_form(), 0
    while True:
        with store.write_session() as session:
            rows = session.execute(select(Image.id, Image.embedding).where(Image.id > last, older)
                                   .order_by(Image.id).limit(batch)).all()
            if not rows:
                break
            session.execute(update(Image), [{"id": image_id, "embedding": vector_codec.encode(
                vector_codec.decode(blob))} for image_id, blob in rows])
        last, report.converted = rows[-1][0], report.converted + len(rows)
        if progress:
            progress(report.converted)
    if sqlite and report.converted:
        _vacuum(store, report)
    report.bytes_after = _database_bytes(store) if sqlite else 0
    return report


def older_form() -> Any:
    """The SQL condition of an image whose vector is not in the form written now."""
    return func.substr(Image.embedding, 1, len(vector_codec.Q12)) != literal(vector_codec.Q12, LargeBinary)


def _database_bytes(store: Store) -> int:
    """The SQLite database's size on disk, with its write-ahead log."""
    return sum(path.stat().st_size for path in store.directory.glob(f"{DB_FILE}*") if path.is_file())


def _vacuum(store: Store, report: ShrinkReport) -> None:
    size = (store.directory / DB_FILE).stat().st_size
    if shutil.disk_usage(store.directory).free < size:
        report.vacuum_note = (f"VACUUM skipped: it needs {size / 2**30:.1f} GiB free beside the database; the "
                              "freed pages are reused by new images meanwhile")
        return
    store.engine.dispose()  # the pooled connections of this process: leaving WAL mode wants none open
    try:
        with store.engine.connect() as connection:
            autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
            try:  # a page size changes only outside WAL mode; VACUUM rewrites the file with it
                autocommit.execute(text("PRAGMA journal_mode=DELETE"))
                autocommit.execute(text(f"PRAGMA page_size={PAGE_SIZE}"))
                autocommit.execute(text("VACUUM"))
            finally:
                autocommit.execute(text("PRAGMA journal_mode=WAL"))
        report.vacuumed = True
    except OperationalError:
        report.vacuum_note = ("VACUUM skipped: another process has the database open; run this again when no "
                              "server is running to give the space back")
