"""A stored image's frame kept at full bit depth for the viewer, and rendered at any window and size.

Greyscale DICOM keeps its modality values (Hounsfield units for CT) as float32: the file is read by the
indexer's capped reader at an identity-wide LINEAR window (``WIDE_WINDOW``, ``robust`` VOI: nothing after
the window), which maps every modality value into [0, 1] with a resolution of 1/8 of a unit, and the
values are taken back out of that range (MONOCHROME1's inversion undone). Greyscale PNG/JPEG/TIFF keeps
its display values on a 0-255 scale; colour images are kept as display RGB in [0, 1] and have no window.

Rendering: values -> LINEAR_EXACT window (``center +- width / 2``) -> MONOCHROME1 inverted ->
``served_picture`` (the one place every picture the viewer serves passes through) -> resized -> PNG."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from medsearch.errors import InvalidQuery
from medsearch.indexer.frames import ReadOptions
from medsearch.storage.pixel_records import text_marks
from medsearch.storage.store import Store

WIDE_WINDOW = (0.5, 2.0**21 + 1.0)
"""A LINEAR window spanning -2**20 .. 2**20 modality units: the values in [0, 1] lose nothing a stored
16-bit sample (or its rescale) holds."""
WIDE_LOW, WIDE_SPAN = -(2.0**20), 2.0**21
MAX_VIEW_SIZE = 4096
RASTER_SCALE = 255.0


@dataclass(frozen=True)
class ViewFrame:
    """One frame for the viewer. ``values``: float32, (H, W) in modality units (``kind`` ``dicom``) or on
    a 0-255 scale (``raster``), or (H, W, 3) display RGB in [0, 1] (``colour``). ``monochrome1``: shown
    inverted after the window. ``window``: the starting ``(center, width)``; None for colour."""

    values: np.ndarray
    kind: str
    monochrome1: bool
    window: tuple[float, float] | None

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes)


def read_view_frame(path: Path, options: ReadOptions, frame_number: int,
                    file_window: tuple[float, float] | None) -> ViewFrame:
    """The frame ``frame_number`` (0: the representative one) of ``path``, read with ``options``' caps;
    ``file_window``: the window to start at (the file's own, or a preset), None for the values' range.
    Raises UnreadableFile, NotFound (no such frame). Runs in a capped worker (``medsearch.viewer.service``)."""
    from medsearch.errors import NotFound
    from medsearch.indexer.readers import read_file

    wide = replace(options, window=WIDE_WINDOW, voi="robust", frames="all" if frame_number > 0 else "middle")
    frames = read_file(path, wide)
    frame = next((f for f in frames if f.frame_number == frame_number), frames[0] if frame_number <= 0 else None)
    if frame is None:
        raise NotFound(f"{path.name} has no frame {frame_number}")
    pixels = frame.pixels
    if pixels.ndim == 3:
        return ViewFrame(np.ascontiguousarray(pixels, dtype=np.float32), "colour", False, None)
    photometric = str(frame.metadata.get("photometric_interpretation") or "")
    if frame.metadata.get("file_format") != "dicom":
        return ViewFrame(pixels.astype(np.float32) * np.float32(RASTER_SCALE), "raster", False,
                         file_window or (RASTER_SCALE / 2, RASTER_SCALE))
    monochrome1 = photometric == "MONOCHROME1"
    unit = 1.0 - pixels if monochrome1 else pixels
    values = (unit.astype(np.float64) * WIDE_SPAN + WIDE_LOW).astype(np.float32)
    return ViewFrame(values, "dicom", monochrome1, file_window or range_window(values))


def range_window(values: np.ndarray) -> tuple[float, float]:
    """The window spanning ``values`` from their lowest to their highest (width at least 1)."""
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0)


def check_window(center: float, width: float) -> tuple[float, float]:
    """``(center, width)`` when both are finite and the width positive. Raises InvalidQuery."""
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise InvalidQuery(f"a window needs a finite center and a positive width, not {center:g}/{width:g}")
    return center, width


def windowed(frame: ViewFrame, window: tuple[float, float] | None) -> np.ndarray:
    """Display pixels, float32 in [0, 1], (H, W) or (H, W, 3): ``frame`` through ``window`` (LINEAR_EXACT;
    None: the frame's starting window), MONOCHROME1 inverted. Colour frames are returned as they are."""
    if frame.kind == "colour" or frame.window is None:
        return frame.values
    center, width = window or frame.window
    shown = (frame.values - np.float32(center - width / 2)) * np.float32(1.0 / width)
    np.clip(shown, 0.0, 1.0, out=shown)
    return 1.0 - shown if frame.monochrome1 else shown


def served_picture(store: Store, image_id: int, pixels: np.ndarray) -> np.ndarray:
    """Every picture the viewer serves passes here, at the image's own resolution, after the window
    (float32 [0, 1], (H, W) or (H, W, 3)). An image flagged as carrying burned-in text, or in which the
    index-time detector read words, is masked or withheld (``medsearch.indexer.censor``) unless the store
    keeps identity; the others are served as they are (the detector runs only where text was found)."""
    from medsearch.indexer.censor import censor

    flagged, words, keep_identity = text_marks(store, image_id)
    if keep_identity or not (flagged or words):
        return pixels
    shown = censor(pixels, flagged, keep_identity=False).pixels
    return np.full_like(pixels, 0.5) if shown is None else shown


def png_of(pixels: np.ndarray, size: int) -> bytes:
    """PNG bytes (8-bit grey or RGB, fast compression) of display pixels fitted inside ``size`` x ``size``
    (aspect kept; never enlarged)."""
    from PIL import Image

    image = Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BILINEAR if max(image.size) < 2 * size
                        else Image.Resampling.BOX)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()
