"""PNG, JPEG, TIFF and BMP through Pillow. 16-bit images keep their 16 bits (scaled by the dtype)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from indexer.frames import Frame, ReadOptions
from indexer.pixels import scale_by_dtype, to_three_channels
from storage.errors import UnreadableFile

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")


class RasterReader:
    name = "raster"

    def accepts(self, path: Path, head: bytes) -> bool:
        return path.suffix.lower() in RASTER_SUFFIXES or head.startswith(_MAGIC)

    def read(self, path: Path, options: ReadOptions) -> list[Frame]:
        from PIL import Image, UnidentifiedImageError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    width, height = image.size
                    if width * height > options.max_pixels:
                        raise UnreadableFile(f"image too large ({width}x{height} pixels)")
                    image_format = (image.format or path.suffix.lstrip(".")).lower()
                    pixels = _to_array(image)
        except UnreadableFile:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UnreadableFile(f"decompression bomb: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise UnreadableFile("not a readable image (unidentified or corrupt)") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise UnreadableFile(f"corrupt or truncated image: {exc}") from exc
        metadata = {"file_format": image_format, "width": width, "height": height}
        return [Frame(pixels=pixels, metadata=metadata)]


def _to_array(image) -> np.ndarray:  # type: ignore[no-untyped-def]
    """PIL image -> float32 [0, 1], (H, W) or (H, W, 3)."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        array = np.asarray(image, dtype=np.uint16)
    elif mode == "I":
        array = np.asarray(image)
        array = array.astype(np.uint16) if array.max(initial=0) <= 65535 and array.min(initial=0) >= 0 else array
    elif mode == "F":
        raise UnreadableFile("floating-point pixels are not supported (no defined display range)")
    elif mode in ("L", "RGB"):
        array = np.asarray(image)
    elif mode in ("1",):
        array = np.asarray(image.convert("L"))
    elif mode in ("LA", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La"):
        array = np.asarray(image.convert("RGB"))
    else:
        array = np.asarray(image.convert("RGB"))
    return to_three_channels(scale_by_dtype(array))
