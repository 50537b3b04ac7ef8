"""Tables of radiology reports: one ``Report`` per study, its ``ReportLabel`` per finding, and its
``ReportSentence`` rows (one per finding mention, or per sentence without one) for full-text search.

A report's study is its StudyInstanceUID (``study_uid``), as the images store it; an image without one
(a PNG keyed by path) is matched by ``image_path`` instead; exactly one of the two is set. Accession
numbers are kept only as their keyed hash (``accession_key``, ``medsearch.storage.reports.accession_key``).
The report text is kept (``text``) only on request; ``ReportSentence.text`` holds de-identified sentences
otherwise (``medsearch.search.reports.deidentify``).

Full text: on SQLite an FTS5 table ``report_fts`` whose rowid is ``report_sentences.id`` (written with the
rows, ``medsearch.storage.reports``); on PostgreSQL a GIN index over ``to_tsvector('simple', text)``."""

from __future__ import annotations

import datetime as dt

from medsearch.storage.models import Base, Id, utcnow
from sqlalchemy import DDL, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, event, func, literal_column
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql  # noqa: F401  (registers to_tsvector's types before it is built)
from sqlalchemy.orm import Mapped, mapped_column

FTS_TABLE = "report_fts"


class Report(Base):
    """The report of one study, and how it was read (source ``csv`` or ``sr``, label set, labeller version)."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("study_uid", name="uq_reports_study_uid"),
        UniqueConstraint("image_path", name="uq_reports_image_path"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    study_uid: Mapped[str | None] = mapped_column(String(64))
    image_path: Mapped[str | None] = mapped_column(String(4096))
    accession_key: Mapped[str | None] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(8))
    label_set: Mapped[str] = mapped_column(String(128))
    labeller_version: Mapped[str] = mapped_column(String(64))
    text: Mapped[str | None] = mapped_column(Text)  # only with --keep-report-text
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ReportLabel(Base):
    """A study's label for one finding: ``positive``, ``negative`` or ``uncertain``."""

    __tablename__ = "report_labels"
    __table_args__ = (Index("ix_report_labels_finding", "finding", "polarity", "report_id"),)

    report_id: Mapped[int] = mapped_column(Id, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True)
    finding: Mapped[str] = mapped_column(String(128), primary_key=True)
    polarity: Mapped[str] = mapped_column(String(16))


class ReportSentence(Base):
    """A sentence of a report with one finding it mentions (``finding`` empty and ``polarity`` ``none`` for a
    sentence that mentions none); ``text`` is de-identified unless the report's text is kept."""

    __tablename__ = "report_sentences"
    __table_args__ = (
        Index("ix_report_sentences_tsv", sql_text("to_tsvector('simple'::regconfig, text)"),
              postgresql_using="gin").ddl_if(dialect="postgresql"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    report_id: Mapped[int] = mapped_column(Id, ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    finding: Mapped[str] = mapped_column(String(128))
    polarity: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)


TSVECTOR = func.to_tsvector(literal_column("'simple'::regconfig"), ReportSentence.text)
"""The PostgreSQL full-text vector of a sentence, as ``ix_report_sentences_tsv`` indexes it."""

event.listen(
    ReportSentence.__table__, "after_create",
    DDL(f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(text, tokenize='unicode61')")
    .execute_if(dialect="sqlite"))
