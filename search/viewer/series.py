"""The slices of an image's series, in the order a radiologist pages through them, and each slice's
score for a query.

Order: InstanceNumber, then the position along the slice normal (ImagePositionPatient on the normal of
ImageOrientationPatient), then the frame number, then the id. Both come from the files' headers (read
without pixels, only the few attributes needed); DICOMweb items and files that cannot be read keep the
store's order after those that can."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.storage.store import Store

MAX_SLICES = 2000
"""Slices listed per series at most (the first ones by id); a longer series is cut there."""
HEADER_TAGS = ("InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "WindowCenter",
               "WindowWidth", "Modality", "PhotometricInterpretation")


@dataclass(frozen=True)
class Header:
    """What the viewer reads from a DICOM header: ``number`` (InstanceNumber), ``position`` (mm along the
    slice normal), ``window`` (the file's first Window Center / Width), ``modality``."""

    number: int | None = None
    position: float | None = None
    window: tuple[float, float] | None = None
    modality: str = ""


@dataclass(frozen=True)
class Slice:
    id: int
    frame_number: int
    number: int | None
    position: float | None

    def sort_key(self) -> tuple[Any, ...]:
        return (self.number is None, self.number or 0, self.position is None, self.position or 0.0,
                self.frame_number, self.id)


def read_header(path: Path) -> Header:
    """The viewer's attributes of a DICOM file (an empty Header when it cannot be read as DICOM)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS), force=False)
        return Header(_number(ds.get("InstanceNumber")), _position(ds), _window(ds),
                      str(ds.get("Modality") or "").strip().upper())
    except Exception:  # a header the viewer cannot read only loses its place in the order
        return Header()


def _number(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _position(ds: Any) -> float | None:
    try:
        where = np.asarray([float(v) for v in ds.ImagePositionPatient], dtype=np.float64)
        cosines = [float(v) for v in ds.get("ImageOrientationPatient") or (1, 0, 0, 0, 1, 0)]
        normal = np.cross(cosines[:3], cosines[3:])
        value = float(where @ normal)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _window(ds: Any) -> tuple[float, float] | None:
    def first(value: Any) -> float | None:
        if value is None:
            return None
        try:
            number = float(value[0] if isinstance(value, Sequence) and not isinstance(value, str) else value)
        except (TypeError, ValueError, IndexError):
            return None
        return number if math.isfinite(number) else None

    center, width = first(ds.get("WindowCenter")), first(ds.get("WindowWidth"))
    return (center, width) if center is not None and width is not None and width > 0 else None


def series_rows(store: Store, image_id: int) -> list[tuple[int, str, int]]:
    """(id, stored path, frame number) of every image in ``image_id``'s series (only itself when it has
    no Series Instance UID), at most ``MAX_SLICES``, by id. Raises NotFound."""
    from medsearch.storage.units import series_members

    return series_members(store, image_id, MAX_SLICES)


def ordered_slices(rows: Sequence[tuple[int, str, int]], header_of: Callable[[str], Header]) -> list[Slice]:
    """``rows`` (id, path, frame number) as slices in viewing order; ``header_of(path)`` reads a file's
    header (the same file is read once)."""
    headers: dict[str, Header] = {}
    slices = []
    for image_id, path, frame_number in rows:
        if path not in headers:
            headers[path] = header_of(path)
        header = headers[path]
        slices.append(Slice(image_id, frame_number, header.number, header.position))
    return sorted(slices, key=Slice.sort_key)


def slice_scores(store: Store, ids: Sequence[int], query: np.ndarray) -> dict[int, float]:
    """{id: cosine of the stored vector to the unit ``query`` (dim,)} for the ids still stored."""
    from medsearch.storage import queries

    vectors = queries.embeddings(store, list(ids))
    return {i: float(np.dot(vector, query)) for i, (_path, vector) in vectors.items()}
