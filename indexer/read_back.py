"""Read a file again the way the store read its images: the VOI options recorded per image
(``Image.read_options``, ``medsearch.indexer.frames.read_key``), so that a file queried from disk gets the pixels,
and the vector, it got when it was indexed."""

from __future__ import annotations

from dataclasses import replace

from medsearch.errors import NotFound
from medsearch.indexer.frames import ReadOptions, parse_read_key
from medsearch.indexer.windows import parse_window
from medsearch.storage import pixel_records
from medsearch.storage.pixel_records import most_used_read_key
from medsearch.storage.store import Store


def options_from_key(key: str | None, base: ReadOptions | None = None) -> ReadOptions:
    """``base`` (default ``ReadOptions()``) with the VOI options of a stored ``read_key``; None: ``base``."""
    base = base or ReadOptions()
    if not key:
        return base
    parts = parse_read_key(key)
    window = parts.get("window", "file")
    asked = None if window == "file" else parse_window(tuple(float(v) for v in window.split(",")))  # type: ignore[arg-type]
    return replace(base, voi=parts.get("voi", base.voi), window=asked)  # type: ignore[arg-type]


def store_read_options(store: Store) -> ReadOptions:
    """The VOI options most of the store's greyscale DICOM images were read with (``ReadOptions()`` for
    a store without any, or from before they were recorded)."""
    return options_from_key(most_used_read_key(store))


def image_source(store: Store, image_id: int) -> tuple[str, int, ReadOptions]:
    """(path, frame number, the options it was read with, ``keep_identity`` set when the store kept the
    image's identity) of a stored image. Raises NotFound."""
    found = pixel_records.image_source(store, image_id)
    if found is None:
        raise NotFound(f"No image with id {image_id} in the store.")
    return found[0], found[1], replace(options_from_key(found[2]), keep_identity=found[3])
