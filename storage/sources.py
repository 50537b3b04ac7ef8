"""Remote sources (a DICOMweb server) and their sync cursors, and the stored rows that came from them.

A source is keyed by its URL as the user gave it (``dicomweb+https://host/path``), which never holds
credentials. Its cursor says where the last complete sync got to: Orthanc's change sequence number, or the
date the last study-date window was asked on. A cursor is written only once a sync has committed all its
work, so a killed sync is simply run again. The table is created on open for older stores, as every table is
(``medsearch.storage.database`` imports ``medsearch.storage.source_models``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from medsearch.storage.models import Failure, Image, utcnow
from medsearch.storage.source_models import Source
from medsearch.storage.store import Store
from sqlalchemy import or_, select


@dataclass
class Cursor:
    """Where a source's last complete sync got to. ``filters``: QIDO attribute -> value."""

    url: str
    feed: str
    filters: dict[str, str] = field(default_factory=dict)
    change_seq: int | None = None
    window_date: dt.date | None = None


def load_cursor(store: Store, url: str) -> Cursor | None:
    """The cursor of ``url``, or None when it was never synced completely."""
    with store.read_session() as session:
        row = session.get(Source, url)
        if row is None:
            return None
        return Cursor(row.url, row.feed, json.loads(row.filters or "{}"), row.change_seq, row.window_date)


def save_cursor(store: Store, cursor: Cursor) -> None:
    """Record a completed sync (one transaction)."""
    with store.write_session() as session:
        row = session.get(Source, cursor.url) or Source(url=cursor.url)
        row.feed, row.filters = cursor.feed, json.dumps(cursor.filters, sort_keys=True)
        row.change_seq, row.window_date, row.synced_at = cursor.change_seq, cursor.window_date, utcnow()
        session.merge(row)


def stored_under(store: Store, prefix: str, study_uid: str | None = None) -> dict[str, str | None]:
    """Paths of the images whose path starts with ``prefix`` -> their StudyInstanceUID (one entry per
    path, whatever its frames); only one study's when ``study_uid`` is given."""
    query = select(Image.path, Image.study_instance_uid).distinct().where(
        Image.path.startswith(prefix, autoescape=True))
    if study_uid is not None:
        query = query.where(Image.study_instance_uid == study_uid)
    with store.read_session() as session:
        return {path: study for path, study in session.execute(query)}


def pending_under(store: Store, prefix: str) -> dict[str, str]:
    """Path -> reason of the instances under ``prefix`` whose fetch failed (recorded without a size: nothing
    was received, so it may work next time). Failures to decode received bytes are not pending."""
    query = select(Failure.path, Failure.reason).where(
        Failure.path.startswith(prefix, autoescape=True), or_(Failure.size.is_(None), Failure.size == 0))
    with store.read_session() as session:
        return {path: reason for path, reason in session.execute(query)}


def source_failures(store: Store) -> dict[str, list[dict[str, str]]]:
    """Each source's pending failures (see ``pending_under``): URL -> [{"path", "reason"}], for ``info``."""
    return {url: [{"path": path, "reason": reason} for path, reason in sorted(pending_under(store, url + "/").items())]
            for url in source_urls(store)}


def source_urls(store: Store) -> list[str]:
    with store.read_session() as session:
        return list(session.scalars(select(Source.url).order_by(Source.url)))


def as_dict(cursor: Cursor) -> dict[str, Any]:
    return {"url": cursor.url, "feed": cursor.feed, "filters": cursor.filters, "change_seq": cursor.change_seq,
            "window_date": cursor.window_date.isoformat() if cursor.window_date else None}
