"""Saved research cohorts: a definition, its runs (each with a manifest) and each run's members.

Every ``cohort create`` or ``cohort refresh`` adds a run; the runs are kept, so ``cohort diff`` can compare
the latest members with the previous run's. Deleting a cohort deletes its runs and members (cascade).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, Id, utcnow


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
    """An image in a run, with its rank and scores (``score``: cosine of the ranking criterion)."""

    __tablename__ = "cohort_members"

    run_id: Mapped[int] = mapped_column(ForeignKey("cohort_runs.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(Id, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(4096))
    score: Mapped[float | None] = mapped_column(Float)
    probability: Mapped[float | None] = mapped_column(Float)
