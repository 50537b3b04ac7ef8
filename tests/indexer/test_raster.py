"""The raster reader on real images written here: bit depths kept, modes, orientation, bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.raster import RasterReader
from medsearch.indexer.readers import read_file
from PIL import Image

READER = RasterReader()
SIXTEEN = np.array([[0, 1000, 65535]], dtype=np.uint16)


def read_pixels(path: Path, **options: object) -> np.ndarray:
    frames = read_file(path, ReadOptions(**options))  # type: ignore[arg-type]
    assert len(frames) == 1 and frames[0].frame_number == 0
    pixels = frames[0].pixels
    assert pixels.dtype == np.float32 and pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert pixels.flags.c_contiguous
    return pixels


def reason_of(path: Path, **options: object) -> str:
    with pytest.raises(UnreadableFile) as caught:
        READER.read(path, ReadOptions(**options))  # type: ignore[arg-type]
    assert caught.value.reason
    return caught.value.reason


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_is_scaled_by_its_dtype_not_clipped(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"sixteen{suffix}"
    Image.fromarray(SIXTEEN).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"  # really a 16-bit file
    np.testing.assert_allclose(read_pixels(path), [[0.0, 1000 / 65535, 1.0]], rtol=1e-6)


def test_big_endian_sixteen_bit_tiff(tmp_path: Path) -> None:
    path = tmp_path / "be.tif"
    tifffile.imwrite(path, SIXTEEN, byteorder=">")
    np.testing.assert_allclose(read_pixels(path), [[0.0, 1000 / 65535, 1.0]], rtol=1e-6)


def test_metadata(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.zeros((3, 5), np.uint8)).save(path)
    frame = READER.read(path, ReadOptions())[0]
    assert frame.metadata == {"file_format": "png", "width": 5, "height": 3, "frame_number": 0}


def test_modes(tmp_path: Path) -> None:
    grey = np.array([[0, 51, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    np.testing.assert_allclose(read_pixels(tmp_path / "l.png"), [[0, 0.2, 1]], rtol=1e-6)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 7
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    pixels = read_pixels(tmp_path / "rgba.png")
    assert pixels.shape == (2, 2, 3)
    np.testing.assert_array_equal(pixels[0, 0], [1, 0, 0])  # alpha dropped, not blended
    Image.fromarray(np.stack([grey, grey], -1), "LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_pixels(tmp_path / "la.png"), [[0, 0.2, 1]], rtol=1e-6)
    Image.fromarray(grey).convert("1").save(tmp_path / "bw.png")
    np.testing.assert_array_equal(read_pixels(tmp_path / "bw.png"), [[0, 0, 1]])
    Image.fromarray(rgba[..., :3], "RGB").convert("P").save(tmp_path / "p.png")
    assert read_pixels(tmp_path / "p.png").shape == (2, 2, 3)
    Image.fromarray(rgba[..., :3], "RGB").save(tmp_path / "c.bmp")
    np.testing.assert_array_equal(read_pixels(tmp_path / "c.bmp")[1, 1], [1, 0, 0])


def test_jpeg_and_exif_orientation(tmp_path: Path) -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    frame = READER.read(tmp_path / "photo.jpg", ReadOptions())[0]
    assert frame.pixels.shape == (40, 20, 3)
    assert frame.metadata == {"file_format": "jpeg", "width": 20, "height": 40, "frame_number": 0}
    assert frame.pixels[:20].mean() > 0.9 and frame.pixels[20:].mean() < 0.1  # white half on top


def test_float_and_wide_integer_tiffs(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "unit.tif", np.array([[0.0, 0.25, 1.0]], np.float32))
    np.testing.assert_allclose(read_pixels(tmp_path / "unit.tif"), [[0.0, 0.25, 1.0]])
    tifffile.imwrite(tmp_path / "hu.tif", np.array([[-1000.0, 0.0, 3000.0]], np.float32))
    assert (
        reason_of(tmp_path / "hu.tif") == "floating-point pixels outside [0, 1] have no defined display range"
    )
    tifffile.imwrite(tmp_path / "nan.tif", np.array([[0.0, np.nan]], np.float32))
    assert reason_of(tmp_path / "nan.tif").startswith("floating-point pixels")
    tifffile.imwrite(tmp_path / "i32.tif", np.array([[0, 1000, 65535]], np.int32))
    np.testing.assert_allclose(read_pixels(tmp_path / "i32.tif"), [[0.0, 1000 / 65535, 1.0]], rtol=1e-6)
    tifffile.imwrite(tmp_path / "big.tif", np.array([[0, 70000]], np.int32))
    assert reason_of(tmp_path / "big.tif").startswith("32-bit integer pixels")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (8-bit grey) with a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_decompression_bombs_and_max_pixels(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    assert reason_of(tmp_path / "bomb.png").startswith("image too large")
    (tmp_path / "wide.png").write_bytes(_png_header_only(15_000, 10_000))  # under Pillow's own limit
    assert reason_of(tmp_path / "wide.png", max_pixels=100_000_000) == (
        "image too large: 15000 x 10000 = 150000000 pixels > limit 100000000"
    )
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    assert (
        reason_of(tmp_path / "small.png", max_pixels=100)
        == "image too large: 20 x 20 = 400 pixels > limit 100"
    )


def test_corrupt_and_truncated_images(tmp_path: Path) -> None:
    (tmp_path / "text.png").write_bytes(b"hello, not a picture")
    assert reason_of(tmp_path / "text.png") == "not a readable image (unidentified or corrupt)"
    Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)).save(
        tmp_path / "full.png"
    )
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert reason_of(tmp_path / "cut.png").startswith("corrupt or truncated image")
    (tmp_path / "header.png").write_bytes(_png_header_only(64, 64))  # too little data for its size
    assert reason_of(tmp_path / "header.png").startswith("corrupt or truncated image")


def test_large_jpegs_decode_at_a_reduced_scale(tmp_path: Path) -> None:
    """With a draft size, a big JPEG is decoded by DCT scaling to no less than that size; the metadata
    keeps the stored size, and the pixels agree with a full decode shrunk to the same size."""
    from medsearch.indexer.frames import ReadOptions
    from medsearch.indexer.raster import RasterReader
    from PIL import Image

    rng = np.random.default_rng(3)
    base = rng.integers(0, 255, (64, 48), dtype=np.uint8)
    big = Image.fromarray(base).resize((1920, 2560), Image.Resampling.BILINEAR)
    path = tmp_path / "big.jpg"
    big.save(path, quality=92)
    full = RasterReader().read(path, ReadOptions())[0]
    small = RasterReader().read(path, ReadOptions(draft_size=448))[0]
    assert full.pixels.shape == (2560, 1920)
    assert small.pixels.shape == (640, 480)  # 1/4 scale: the smallest with both sides >= 448
    assert (small.metadata["width"], small.metadata["height"]) == (1920, 2560)
    shrunk = np.asarray(Image.fromarray(full.pixels).resize((480, 640), Image.Resampling.BOX))
    assert np.abs(shrunk - small.pixels).mean() < 0.02
