"""Thumbnails made at index time, one per stored image (frame), in their own table. They go with their
image (``ON DELETE CASCADE``): a changed file's new rows get new ones, a removed file's go with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medsearch.storage.models import Base, Id, Image
from sqlalchemy import ForeignKey, LargeBinary, insert, select
from sqlalchemy.orm import Mapped, mapped_column

if TYPE_CHECKING:
    from medsearch.storage.store import Store


class Thumbnail(Base):
    """One image's PNG thumbnail (``medsearch.indexer.thumbnail.THUMBNAIL_SIZE`` pixels on its longer side)."""

    __tablename__ = "thumbnails"

    image_id: Mapped[int] = mapped_column(Id, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)


def save_thumbnails(session: Any, ids: Sequence[int], pngs: Sequence[bytes | None]) -> None:
    """Store ``pngs[i]`` for image ``ids[i]``; None entries are skipped."""
    rows = [{"image_id": int(image_id), "png": png} for image_id, png in zip(ids, pngs, strict=True) if png]
    if rows:
        session.execute(insert(Thumbnail), rows)


def stored_thumbnail(store: Store, image_id: int) -> tuple[bytes, int] | None:
    """(PNG bytes, the file's mtime_ns when it was made) of an image's stored thumbnail, or None."""
    with store.read_session() as session:
        row = session.execute(select(Thumbnail.png, Image.mtime_ns).join(Image, Image.id == Thumbnail.image_id)
                              .where(Thumbnail.image_id == image_id)).first()
    return (row[0], row[1]) if row else None
