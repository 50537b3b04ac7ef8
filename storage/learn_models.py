"""Tables for cohorts-for-machine-learning (``medsearch.learn``): saved linear probes and split records.

A probe keeps the model record it was trained on (id, revision, vector size, preprocessing version), so
it is refused on a store of another model; a split record keeps the store's, likewise. A probe's weights
are float32 bytes of shape (dim,).
"""

from __future__ import annotations

import datetime as dt

from medsearch.storage.models import Base, utcnow
from sqlalchemy import Float, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class Probe(Base):
    """A logistic-regression probe on the stored vectors: ``p = sigmoid(vector . weights + bias)``."""

    __tablename__ = "probes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_id: Mapped[str] = mapped_column(String(512))
    model_revision: Mapped[str] = mapped_column(String(128))
    dim: Mapped[int] = mapped_column(Integer)
    preprocessing_version: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    bias: Mapped[float] = mapped_column(Float)
    report: Mapped[str] = mapped_column(Text)  # JSON: definition, counts, cross-validated AUC and its CI
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SplitRecord(Base):
    """How a split field was made (JSON definition and counts), so it can be shown and reproduced, and
    the model record of the store it was made on (NULL in records older than that: not checked)."""

    __tablename__ = "split_records"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    definition: Mapped[str] = mapped_column(Text)
    counts: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    model_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    model_revision: Mapped[str | None] = mapped_column(String(128), nullable=True)
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preprocessing_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
