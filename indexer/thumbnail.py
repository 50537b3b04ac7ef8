"""Small PNG thumbnails of display pixels, rendered at index time in the decoding worker (from the pixels
it has just decoded) and served by the HTTP API instead of decoding the file again."""

from __future__ import annotations

import io

import numpy as np

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
