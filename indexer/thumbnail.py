"""Small PNG thumbnails of display pixels, rendered at index time in the decoding worker (from the pixels
it has just decoded) and served by the HTTP API instead of decoding the file again. Burned-in text is
masked or the picture withheld first (``medsearch.indexer.censor``; ``medsearch.indexer.load`` does it at
index time, ``shown_png`` for pictures rendered later)."""

from __future__ import annotations

import io

import numpy as np
from medsearch.indexer.censor import shown
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.text_detect import DETECT_SIZE

THUMBNAIL_SIZE = 256
"""Pixels on the longer side of a thumbnail made at index time (the page's default size)."""


def render_png(pixels: np.ndarray, size: int = THUMBNAIL_SIZE) -> bytes:
    """PNG bytes of (H, W) or (H, W, 3) float32 pixels in [0, 1], fitted inside ``size`` x ``size``
    (aspect kept; 8-bit grey or RGB)."""
    from PIL import Image

    image = Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def shown_png(frame: Frame, size: int, options: ReadOptions) -> bytes:
    """``render_png`` of what may be shown of a frame: burned-in text masked, or the picture withheld for a
    file flagged ``BurnedInAnnotation = YES`` (``medsearch.indexer.censor``), unless ``options.keep_identity``."""
    flagged = bool(frame.metadata.get("burned_in_annotation"))
    picture, _words = shown(frame.pixels, flagged, options.keep_identity, max(DETECT_SIZE, size))
    return render_png(picture, size)
