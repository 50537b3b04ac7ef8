"""Where a stored image came from: its file and frame, for code that must read the pixels again."""

from __future__ import annotations

from sqlalchemy import select

from storage.errors import NotFound
from storage.models import Image
from storage.store import Store


def image_source(store: Store, image_id: int) -> tuple[str, int]:
    """(stored path, frame number: 0 single-frame, else 1-based) of ``image_id``. Raises NotFound."""
    with store.sessions() as session:
        row = session.execute(select(Image.path, Image.frame_number).where(Image.id == image_id)).first()
    if row is None:
        raise NotFound(f"No image with id {image_id} in the store.")
    return str(row[0]), int(row[1])
