"""Pixel check of near-duplicate candidates: two images are compared as small grey pictures, the crop
of one that best matches the other (up to 11 % off each axis, at either edge or centred) against the
other whole, by normalised correlation. A copy (re-encoded, cropped 5-10 %, re-windowed) keeps its
pixels' layout; two patients' images, even when the model's vectors put them as close, do not.

Correlation is taken after removing each picture's mean and dividing by its norm, so a linear change of
window (gain, offset) leaves it unchanged. Cost: about 200 resizes of a 96-pixel picture per pair.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

SIDE = 24
"""Pixels on each side of the compared pictures."""
WORKING = 96
"""Pixels on the longer side a picture is shrunk to before it is cropped."""
CROP_FRACTIONS = (0.0, 0.04, 0.08, 0.11)
"""Shares of the height and of the width cut off a picture to align it with a cropped copy."""


def grey(pixels: np.ndarray) -> PILImage.Image:
    """An 8-bit grey picture of (H, W) or (H, W, 3) float32 pixels in [0, 1] (channels averaged)."""
    values = pixels.mean(axis=2) if pixels.ndim == 3 else pixels
    return PILImage.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8))


def grey_png(data: bytes) -> PILImage.Image:
    """The grey picture of PNG ``data`` (a stored thumbnail). Raises OSError for bytes PIL cannot read."""
    return PILImage.open(io.BytesIO(data)).convert("L")


def similarity(a: PILImage.Image, b: PILImage.Image) -> float:
    """The best normalised correlation, in [-1, 1], of any crop of either picture with the other whole
    (SIDE x SIDE); 1.0 for one picture."""
    a, b = _shrunk(a), _shrunk(b)
    return max(float((_crops(a) @ _normalised(b)).max()), float((_crops(b) @ _normalised(a)).max()))


def _shrunk(picture: PILImage.Image) -> PILImage.Image:
    """``picture`` fitted inside WORKING x WORKING (crops of a smaller picture resize faster)."""
    if max(picture.size) <= WORKING:
        return picture
    shrunk = picture.copy()
    shrunk.thumbnail((WORKING, WORKING), PILImage.Resampling.BILINEAR)
    return shrunk


def _normalised(picture: PILImage.Image, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    values = np.asarray(picture.resize((SIDE, SIDE), PILImage.Resampling.BILINEAR, box=box), np.float32).ravel()
    values = values - values.mean()
    return values / max(float(np.linalg.norm(values)), 1e-6)


def _crops(picture: PILImage.Image) -> np.ndarray:
    """(crops, SIDE * SIDE) float32: every cut of CROP_FRACTIONS per axis, at either edge or centred."""
    width, height = picture.size
    out = []
    for cut_h in CROP_FRACTIONS:
        for cut_w in CROP_FRACTIONS:
            for top in (0.5,) if cut_h == 0 else (0.0, 0.5, 1.0):
                for left in (0.5,) if cut_w == 0 else (0.0, 0.5, 1.0):
                    h, w = height * cut_h, width * cut_w
                    box = (w * left, h * top, width - w * (1 - left), height - h * (1 - top))
                    out.append(_normalised(picture, box))
    return np.stack(out)
