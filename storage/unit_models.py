"""The series and study table: one row per DICOM series or study, with the normalised mean of its images'
vectors. Written in the same transaction as the images it summarises (``medsearch.storage.units``)."""

from __future__ import annotations

import datetime as dt

from medsearch.storage.models import Base, Id
from sqlalchemy import BigInteger, Date, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class Unit(Base):
    """A series (``kind = "series"``, ``uid`` its SeriesInstanceUID) or a study (its StudyInstanceUID).
    ``id`` is its FAISS id in the unit index of its kind, never reused. ``size`` 0 means the unit lost its
    last image: the row stays as a tombstone (``embedding`` null) so a reader's index drops it on replay."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("kind", "uid", name="uq_units_kind_uid"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    uid: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    generation: Mapped[int] = mapped_column(BigInteger, index=True)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    modality: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(256))
