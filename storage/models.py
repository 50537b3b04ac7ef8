"""SQLAlchemy 2.0 typed models. The database is the source of truth: it keeps every vector too (in
``image_vectors``), and the FAISS file is a snapshot of it (see ``medsearch.storage.vectors``).

Ids: ``images.id`` is the FAISS id. It is never reused (``sqlite_autoincrement``), 64-bit on PostgreSQL.
Times are stored in UTC without tzinfo (SQLite drops it); re-attach UTC on read.
"""

from __future__ import annotations

import datetime as dt

from medsearch.storage.model_record import ModelRecord
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    literal,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time in UTC, without tzinfo, as stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class StoreInfo(Base):
    """One row: what produced the vectors, the generation that every committed batch bumps, and the fields
    version that every field write bumps."""

    __tablename__ = "store_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(512))
    model_revision: Mapped[str] = mapped_column(String(128))
    dim: Mapped[int] = mapped_column(Integer)
    preprocessing_version: Mapped[str] = mapped_column(String(64))
    index_type: Mapped[str] = mapped_column(String(64))
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    # bumped with every image_fields write (medsearch.storage.field_version); NULL (read as 0) in older stores
    fields_version: Mapped[int | None] = mapped_column(BigInteger, default=0)
    # the model's probability calibration (SigLIP's logit_scale, logit_bias), recorded the first time the model
    # loads over the store (medsearch.storage.model_record): a cached query then needs no model; NULL in older stores
    logit_scale: Mapped[float | None] = mapped_column(Float, nullable=True)
    logit_bias: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    def model_record(self) -> ModelRecord:
        """What produced the store's vectors, as this row records it."""
        return ModelRecord(self.model_id, self.model_revision, self.dim, self.preprocessing_version)


class ImageVector(Base):
    """An image's stored vector (``medsearch.storage.vector_codec``'s 12-bit form), in a table of its own: the re-rank
    of every ``ivf-pq`` query reads a few hundred of them at random, and a table of vectors alone is what
    the page cache can hold (ten million: 17.7 GB, where the images with their vectors took 26 GB)."""

    __tablename__ = "image_vectors"

    id: Mapped[int] = mapped_column(Id, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True,
                                    autoincrement=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


class Image(Base):
    """One embedded image: a file, or one frame of a multi-frame file."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("path", "frame_number", name="uq_images_path_frame"),
        Index("ix_images_content_hash", "content_hash"),
        Index("ix_images_generation", "generation"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(4096))
    frame_number: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64))
    # Where stores older than ``image_vectors`` keep the vector; an empty blob once it is in that table
    # (every row written now; ``medsearch upgrade --vectors-only`` moves the older ones). Read ``embedding``.
    legacy_embedding: Mapped[bytes | None] = mapped_column("embedding", LargeBinary, default=b"")
    embedding: Mapped[bytes] = column_property(  # the stored vector, wherever it is (NULL: damaged)
        func.coalesce(select(ImageVector.embedding).where(ImageVector.id == id).scalar_subquery(),
                      func.nullif(legacy_embedding, literal(b"", LargeBinary))),
        deferred=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    indexed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    file_format: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # DICOM attributes research filters on (null for raster images); the page's facet lists
    # (``medsearch.storage.facets.FACET_COLUMNS``) group by the indexed ones.
    study_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    series_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    modality: Mapped[str | None] = mapped_column(String(16), index=True)
    body_part: Mapped[str | None] = mapped_column(String(64), index=True)
    view_position: Mapped[str | None] = mapped_column(String(16), index=True)
    study_date: Mapped[dt.date | None] = mapped_column(Date)
    series_description: Mapped[str | None] = mapped_column(String(256))
    manufacturer: Mapped[str | None] = mapped_column(String(128), index=True)
    photometric_interpretation: Mapped[str | None] = mapped_column(String(32))
    transfer_syntax: Mapped[str | None] = mapped_column(String(64))
    patient_sex: Mapped[str | None] = mapped_column(String(8), index=True)
    patient_age: Mapped[float | None] = mapped_column(Float)
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # the keyed hash of the Accession Number (``medsearch.storage.reports.accession_key``), which matches
    # reports keyed by accession to their study; never the number itself. NULL in stores indexed before it.
    accession_key: Mapped[str | None] = mapped_column(String(64), index=True)
    burned_in_annotation: Mapped[bool | None] = mapped_column(Boolean)
    # Words of burned-in text the detector read in the pixels (``medsearch.indexer.text_detect``): 0 none,
    # NULL not checked (stores from before it, or no detector installed). ``--where "text_regions = 0"``.
    text_regions: Mapped[int | None] = mapped_column(Integer)
    # How the pixels were made (null in stores older than preprocessing version 3): the VOI actually
    # used (``medsearch.indexer.voi.Voi.describe``), the read options asked for (``indexer.read_key``) and the
    # preprocessing version. An image whose options or version differ from a run's is re-embedded.
    voi: Mapped[str | None] = mapped_column(String(128))
    read_options: Mapped[str | None] = mapped_column(String(128))
    preprocessing_version: Mapped[str | None] = mapped_column(String(64))
    # Only with the explicit opt-in to keep identity: a JSON object of identifying attributes.
    identity: Mapped[str | None] = mapped_column(Text)


METADATA_COLUMNS: tuple[str, ...] = (
    "file_format",
    "width",
    "height",
    "frame_number",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "modality",
    "body_part",
    "view_position",
    "study_date",
    "series_description",
    "manufacturer",
    "photometric_interpretation",
    "transfer_syntax",
    "patient_sex",
    "patient_age",
    "patient_key",
    "burned_in_annotation",
    "text_regions",
    "voi",
)
"""Image columns returned in each result's ``metadata`` and usable in filters."""


class ImageField(Base):
    """A typed value attached to an image from outside the pixels: a sidecar CSV column, or a saved
    zero-shot score. Exactly one of the value columns is set, as ``kind`` says."""

    __tablename__ = "image_fields"
    __table_args__ = (
        Index("ix_image_fields_name_number", "name", "number"),
        # covers the facet queries (``medsearch.storage.facets``: values and counts per name, filtered by image id)
        # without a table read; SQLite only, as PostgreSQL refuses index rows past ~2.7 kB (a long text)
        Index("ix_image_fields_facets", "name", "text", "number", "date", "kind", "image_id").ddl_if(dialect="sqlite"),
    )

    image_id: Mapped[int] = mapped_column(Id, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # number | date | bool | text
    number: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    date: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(256))


class Deletion(Base):
    """A tombstone: the FAISS id removed in a generation, so a snapshot can be caught up by replay."""

    __tablename__ = "deletions"

    image_id: Mapped[int] = mapped_column(Id, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, index=True)


class Failure(Base):
    """A file that could not be indexed, with the reason. Cleared when the file indexes later."""

    __tablename__ = "failures"

    path: Mapped[str] = mapped_column(String(4096), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Root(Base):
    """A folder (or file) the user indexed: only files under a root can be served or re-read."""

    __tablename__ = "roots"

    path: Mapped[str] = mapped_column(String(4096), primary_key=True)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Precision(Base):
    """A numeric precision (float32, bfloat16, float16, int8) that embedded images into this store, and when.
    Vectors of different precisions agree to about 1e-3 in cosine, not exactly; ``info`` lists them."""

    __tablename__ = "precisions"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_used: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_used: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TextEmbedding(Base):
    """Cache of text vectors, per model and revision, so a repeated prompt costs no model call."""

    __tablename__ = "text_embeddings"

    model_key: Mapped[str] = mapped_column(String(640), primary_key=True)
    text: Mapped[str] = mapped_column(Text, primary_key=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
