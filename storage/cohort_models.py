"""Saved research cohorts: a definition, its runs (each with a manifest) and each run's members.

Every ``cohort create`` or ``cohort refresh`` adds a run; the runs are kept, so ``cohort diff`` can compare
the latest members with the previous run's. Deleting a cohort deletes its runs and members (cascade).
"""

from __future__ import annotations

import datetime as dt

from medsearch.storage.models import Base, Id, utcnow
from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class Cohort(Base):
    """A named cohort; ``definition`` is the JSON of its criteria as given."""

    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    definition: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortRun(Base):
    """One evaluation of a cohort's definition; ``manifest`` is the JSON that makes it reproducible."""

    __tablename__ = "cohort_runs"
    __table_args__ = (UniqueConstraint("cohort_id", "number", name="uq_cohort_runs_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CohortMember(Base):
    """An image in a run, with its rank and scores (``score``: cosine of the ranking criterion). In a run
    of series or studies every image of each member unit is a row: ``unit_uid`` names its unit, ``rank``
    is the unit's, ``matched`` says whether the image itself passed the criteria."""

    __tablename__ = "cohort_members"

    run_id: Mapped[int] = mapped_column(ForeignKey("cohort_runs.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(Id, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(4096))
    score: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    unit_uid: Mapped[str | None] = mapped_column(String(64))
    matched: Mapped[bool | None] = mapped_column(Boolean)


class CohortUnit(Base):
    """A series or study in a run of such units: its rank, score (its best matching image's), and the
    summary it had then; ``image_id`` is its representative image (that best one)."""

    __tablename__ = "cohort_units"

    run_id: Mapped[int] = mapped_column(ForeignKey("cohort_runs.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    uid: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    image_id: Mapped[int] = mapped_column(Id)
    score: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
    study_instance_uid: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[str | None] = mapped_column(String(10))
    description: Mapped[str | None] = mapped_column(String(256))
