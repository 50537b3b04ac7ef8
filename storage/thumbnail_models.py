"""The thumbnails table: one PNG per stored image (frame), made at index time. A row goes with its image
(``ON DELETE CASCADE``): a changed file's new rows get new ones, a removed file's go with it."""

from __future__ import annotations

from medsearch.storage.models import Base, Id
from sqlalchemy import ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column


class Thumbnail(Base):
    """One image's PNG thumbnail (``medsearch.indexer.thumbnail.THUMBNAIL_SIZE`` pixels on its longer side)."""

    __tablename__ = "thumbnails"

    image_id: Mapped[int] = mapped_column(Id, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
