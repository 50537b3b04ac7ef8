"""Burned-in text is patient-identifying: what medsearch may show of an image's pixels.

Every picture medsearch stores or serves (the thumbnail made at index time, the server's thumbnails of
other sizes, the picture of the model input) goes through ``censor`` first:

* identity kept (``--keep-identity``): shown as it is;
* the file says ``BurnedInAnnotation = YES``: withheld (a blank picture is shown instead), as the detector
  does not find every word;
* the detector (``medsearch.indexer.text_detect``) reads text, in a 512 px copy or else in a 256 px
  thumbnail: the boxes of every word it read (the unsure
  ones too) are blacked out, the result is read again, and withheld if text is still found;
* otherwise shown as it is. Without the detector (tesserocr or Tesseract's English model missing) only the
  flag is honoured, and ``text_regions`` stays unknown (None).

The model input itself is never changed: search still sees the whole image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from medsearch.indexer import text_detect
from medsearch.indexer.text_detect import DETECT_SIZE, TextBox

MARGIN = 0.35
"""Each box is grown by this fraction of its height above and below before it is blacked out."""
SIDE_MARGIN = 0.8
"""... and by this fraction of its height left and right (a word's neighbours on its line go with it)."""
THUMBNAIL_SIZE = 256
"""Pictures are read as a thumbnail this large too (``medsearch.indexer.thumbnail``'s size): some text reads
only once reduced, some only at full size."""
BLANK_LEVEL = 0.2
"""The grey of a withheld picture."""


@dataclass(frozen=True)
class Censored:
    """``pixels``: what may be shown (same shape and dtype as given), None when withheld.
    ``text_regions``: words the detector surely read in the original (``text_detect.text_words``), None when
    it could not run."""

    pixels: np.ndarray | None
    text_regions: int | None


def censor(pixels: np.ndarray, flagged: bool, keep_identity: bool, size: int = DETECT_SIZE) -> Censored:
    """What may be shown of ``pixels`` ((H, W) or (H, W, 3) float32 in [0, 1]); ``flagged``: the file's
    Burned In Annotation is YES; ``size``: the detector reads a copy this large (at least the size the
    picture is shown at). Never raises for the picture's content."""
    words = text_detect.find_text(pixels, size)
    sure = text_detect.text_words(words)
    if words is not None and not sure:  # read as a thumbnail too: some text reads only once reduced
        words = text_detect.find_text(_reduced(pixels), size)
        sure = text_detect.text_words(words)
    count = None if words is None else len(sure)
    if keep_identity:
        return Censored(pixels, count)
    if flagged:
        return Censored(None, count)
    if not sure:
        return Censored(pixels, count)
    masked = mask(pixels, words or [])  # every word read, the unsure ones too
    if _still_text(masked, size):
        return Censored(None, count)
    return Censored(masked, count)


def _still_text(masked: np.ndarray, size: int) -> bool:
    """Whether the detector still reads text in a masked picture, at ``size`` or as a small thumbnail (where
    the parts of a word left beside a box can read as a word again)."""
    if text_detect.text_words(text_detect.find_text(masked, size)):
        return True
    return bool(text_detect.text_words(text_detect.find_text(_reduced(masked), size)))


def _reduced(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a ``THUMBNAIL_SIZE`` thumbnail (8-bit steps, float32 [0, 1])."""
    from PIL import Image

    small = Image.fromarray(np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8))
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(small, dtype=np.float32) / 255.0


def mask(pixels: np.ndarray, boxes: list[TextBox]) -> np.ndarray:
    """A copy of ``pixels`` with each box (fractions of the size), grown by ``MARGIN`` and ``SIDE_MARGIN``,
    set to 0."""
    out = pixels.copy()
    height, width = pixels.shape[:2]
    for box in boxes:
        tall = box.bottom - box.top
        grow, side = tall * MARGIN, tall * SIDE_MARGIN * height / width
        top, bottom = max(0.0, box.top - grow), min(1.0, box.bottom + grow)
        left, right = max(0.0, box.left - side), min(1.0, box.right + side)
        out[int(top * height):int(np.ceil(bottom * height)), int(left * width):int(np.ceil(right * width))] = 0.0
    return out


def blank_like(pixels: np.ndarray) -> np.ndarray:
    """A uniform grey picture of the same shape: what is shown of a withheld image."""
    return np.full_like(pixels, BLANK_LEVEL)


def shown(pixels: np.ndarray, flagged: bool, keep_identity: bool,
          size: int = DETECT_SIZE) -> tuple[np.ndarray, int | None]:
    """``censor``'s picture, a blank one when withheld; and the number of words read (None: unknown)."""
    result = censor(pixels, flagged, keep_identity, size)
    return (blank_like(pixels) if result.pixels is None else result.pixels), result.text_regions
