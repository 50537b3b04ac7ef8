"""Thumbnails made at index time (the table is ``medsearch.storage.thumbnail_models``): written with their
image's batch, read back by image id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from medsearch.storage.models import Image
from medsearch.storage.store import Store
from medsearch.storage.thumbnail_models import Thumbnail
from sqlalchemy import insert, select


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
