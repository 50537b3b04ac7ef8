"""The table of remote sources and their sync cursors (see ``medsearch.storage.sources``)."""

from __future__ import annotations

import datetime as dt

from medsearch.storage.models import Base, utcnow
from sqlalchemy import BigInteger, Date, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class Source(Base):
    """One remote source and its cursor."""

    __tablename__ = "sources"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    filters: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the QIDO filters of the last full sync
    feed: Mapped[str] = mapped_column(String(32))  # "orthanc-changes" or "study-date"
    change_seq: Mapped[int | None] = mapped_column(BigInteger)
    window_date: Mapped[dt.date | None] = mapped_column(Date)
    synced_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
