"""Database and disk failures (locked, read-only, full, I/O error, damaged) as one-line ``StoreError``s,
so that no SQLAlchemy or OS traceback reaches a user."""

from __future__ import annotations

import errno

from medsearch.errors import StoreError, StoreLocked

DAMAGED = ("the store's database is damaged, which `medsearch check --repair` cannot mend: restore it from a "
           "backup, or index the folders into a new --store")
_DATABASE_MESSAGES = (
    ("database is locked", "the store's database is locked by another process; wait for it to finish"),
    ("readonly database", "the store is read-only; nothing was changed"),
    ("disk is full", "the disk is full; the last complete batch is kept, free space and run again"),
    ("disk i/o error", "disk I/O error; the last complete batch is kept, run `medsearch check`"),
    ("not a database", DAMAGED),
    ("malformed", DAMAGED),
)
_OS_MESSAGES = {
    errno.ENOSPC: "the disk is full; the last complete batch is kept, free space and run again",
    errno.EFBIG: "a file grew past the size limit; the last complete batch is kept",
    errno.EROFS: "the store is on a read-only file system; nothing was changed",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EIO: "disk I/O error; run `medsearch check`",
}


def store_failure(error: BaseException) -> StoreError | None:
    """A one-line StoreError for a database or disk failure (locked, read-only, full, I/O error,
    damaged), or None when ``error`` is not one."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError):
        detail = str(error.orig)
        for needle, message in _DATABASE_MESSAGES:
            if needle in detail.lower():
                kind = StoreLocked if needle == "database is locked" else StoreError
                return kind(f"{message} ({detail})")
        return StoreError(f"database error: {detail}")
    if isinstance(error, OSError) and error.errno in _OS_MESSAGES:
        where = f": {error.filename}" if error.filename else ""
        return StoreError(f"{_OS_MESSAGES[error.errno]}{where}")
    return None
