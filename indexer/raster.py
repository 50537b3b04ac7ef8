"""PNG, JPEG, TIFF and BMP through Pillow.

Integer images are scaled by their dtype: 8-bit by 255, 16-bit (PNG, TIFF: Pillow's ``I;16`` modes) by
65535, never clipped to 8 bits first. 32-bit integer images within 0..65535 are scaled as 16-bit;
float images (TIFF mode ``F``) are taken as they are when already within [0, 1]; other 32-bit and float
images have no defined display range and are rejected. Pillow reduces 16-bit-per-channel colour PNGs to
8 bits per channel. The EXIF orientation is applied (photographs). Multi-page TIFF: the first page.

Size: images over ``ReadOptions.max_pixels`` are rejected from their header, before decoding. Pillow's
own decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 M pixels by default) still
applies above that; an application that wants larger images raises Pillow's limit at start-up.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from medsearch.errors import ImageTooLarge, UnreadableFile
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.isolation import DecodeGuard
from medsearch.indexer.pixels import scale_by_dtype, to_three_channels

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")
_FORMAT_NAMES = {"mpo": "jpeg"}  # phones write JPEG files that Pillow opens as MPO
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_KEPT_MODES = ("L", "LA", "RGB", "RGBA", "RGBX")  # others (P, CMYK, YCbCr, LAB...) are converted to RGB


class RasterReader:
    """Reads ordinary raster images into one frame: float32 [0, 1], (H, W) or (H, W, 3)."""

    name = "raster"

    def accepts(self, path: Path, head: bytes) -> bool:
        """By suffix, or by the format's magic bytes."""
        return path.suffix.lower() in RASTER_SUFFIXES or head.startswith(_MAGIC)

    def read(self, path: Path, options: ReadOptions) -> list[Frame]:
        """``path`` -> one ``Frame`` (frame_number 0). Raises ``UnreadableFile``: not an image, corrupt
        or truncated, more than ``options.max_pixels`` pixels (checked before decoding) or beyond
        Pillow's decompression-bomb limit, or pixels without a display range."""
        from PIL import Image, UnidentifiedImageError

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with DecodeGuard("not a readable image"):
                try:
                    image = Image.open(path)
                except Image.DecompressionBombError as exc:
                    raise UnreadableFile(f"image too large (decompression bomb check): {exc}") from exc
                except UnidentifiedImageError as exc:
                    raise UnreadableFile("not a readable image (unidentified or corrupt)") from exc
                except OSError as exc:
                    raise UnreadableFile(f"cannot open image: {exc.strerror or exc}") from exc
            with image, DecodeGuard("corrupt or truncated image"):
                return [_frame(image, path, options.max_pixels, options.draft_size)]


def _frame(image: PILImage, path: Path, max_pixels: int, draft_size: int | None) -> Frame:
    """Size check (before decoding), EXIF orientation, pixels and metadata of an open image. JPEGs are
    decoded at a reduced scale when ``draft_size`` allows (``ReadOptions.draft_size``); the metadata
    keeps the stored size."""
    from PIL import ImageOps

    _check_size(image, max_pixels)
    image_format = (image.format or path.suffix.lstrip(".")).lower()
    image_format = _FORMAT_NAMES.get(image_format, image_format)
    width, height = image.size
    if draft_size and image.format == "JPEG" and min(width, height) >= 2 * draft_size:
        image.draft(image.mode, (draft_size, draft_size))
    before = image.size
    ImageOps.exif_transpose(image, in_place=True)
    if image.size != before:
        width, height = height, width
    pixels = to_unit_array(image)
    metadata = {"file_format": image_format, "width": width, "height": height, "frame_number": 0}
    return Frame(pixels=pixels, frame_number=0, metadata=metadata)


def _check_size(image: PILImage, max_pixels: int) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnreadableFile(f"invalid image size {width} x {height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"image too large: {width} x {height} = {width * height} pixels > limit {max_pixels}"
        )


def to_unit_array(image: PILImage) -> np.ndarray:
    """A Pillow image -> float32 in [0, 1], (H, W) or (H, W, 3); alpha dropped.

    Raises ``UnreadableFile`` for 32-bit integer or float pixels without a display range."""
    mode = image.mode
    if mode in _SIXTEEN_BIT:
        return scale_by_dtype(np.asarray(image).astype(np.uint16, copy=False))
    if mode == "I":
        return _wide_integers(np.asarray(image))
    if mode == "F":
        return _floats(np.asarray(image))
    if mode == "1":
        image = image.convert("L")
    elif mode not in _KEPT_MODES:
        image = image.convert("RGB")
    return scale_by_dtype(to_three_channels(np.asarray(image)))


def _wide_integers(array: np.ndarray) -> np.ndarray:
    """32-bit integer pixels: within 0..65535 they are 16-bit values in a wider container."""
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise UnreadableFile("32-bit integer pixels beyond 0..65535 have no defined display range")
    return scale_by_dtype(array.astype(np.uint16))


def _floats(array: np.ndarray) -> np.ndarray:
    """Float pixels: used as they are when finite and within [0, 1]."""
    if not np.isfinite(array).all() or (array.size and (array.min() < 0.0 or array.max() > 1.0)):
        raise UnreadableFile("floating-point pixels outside [0, 1] have no defined display range")
    return array.astype(np.float32, order="C")
