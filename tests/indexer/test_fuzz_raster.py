"""Mutation fuzzing of the raster reader: PNG, JPEG, TIFF (8 and 16 bit) and BMP files with flipped bits,
truncations, overwritten bytes and edited headers (absurd widths and heights, CRCs fixed so that Pillow
reads on) go through ``medsearch.indexer.readers.read_file``. Each case must end in ``UnreadableFile`` or in
finite float32 pixels in [0, 1], within a time bound; a header claiming 100000 x 100000 pixels must be
refused before the pixels are allocated. Cases that once broke these rules are kept in
``tests/data/fuzz/raster/`` and replayed."""

from __future__ import annotations

import io
import json
import signal
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from PIL import Image

CORPUS = Path(__file__).parents[1] / "data" / "fuzz" / "raster"
SECONDS_PER_CASE = 15  # a hang detector: an 826-byte JPEG claiming 7967 x 7967 took 6 s on a loaded machine
HUGE = 100_000
CASES_RUN = {"fuzz": 0}


def _encode(fmt: str) -> bytes:
    """A small seed file of ``fmt`` (png, png16, jpeg, tiff, tiff16, bmp)."""
    rng = np.random.default_rng(7)
    colour = Image.fromarray(rng.integers(0, 255, (12, 17, 3), dtype=np.uint8))
    grey16 = Image.fromarray(rng.integers(0, 65535, (12, 17), dtype=np.uint16))
    image, pil_format = {
        "png": (colour, "PNG"), "png16": (grey16, "PNG"), "jpeg": (colour, "JPEG"),
        "tiff": (colour, "TIFF"), "tiff16": (grey16, "TIFF"), "bmp": (colour, "BMP"),
    }[fmt]
    buffer = io.BytesIO()
    image.save(buffer, pil_format)
    return buffer.getvalue()


SEEDS = {fmt: _encode(fmt) for fmt in ("png", "png16", "jpeg", "tiff", "tiff16", "bmp")}
SUFFIX = {"png": ".png", "png16": ".png", "jpeg": ".jpg", "tiff": ".tif", "tiff16": ".tiff", "bmp": ".bmp"}


def _set_size(fmt: str, data: bytes, width: int, height: int) -> bytes:
    """``data`` with the header's width and height replaced (PNG's IHDR CRC recomputed)."""
    out = bytearray(data)
    if fmt.startswith("png"):
        out[16:24] = struct.pack(">II", width, height)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])))
    elif fmt == "jpeg":
        sof = data.index(b"\xff\xc0")
        out[sof + 5:sof + 9] = struct.pack(">HH", min(height, 65535), min(width, 65535))
    elif fmt == "bmp":
        out[18:26] = struct.pack("<ii", width, height)
    else:
        _set_tiff_size(out, width, height)
    return bytes(out)


def _set_tiff_size(out: bytearray, width: int, height: int) -> None:
    """Rewrite ImageWidth (256) and ImageLength (257) in the first IFD of a little-endian TIFF."""
    for at in _ifd_entries(out):
        (tag,) = struct.unpack_from("<H", out, at)
        if tag in (256, 257):
            out[at + 2:at + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)  # LONG, count 1


def _ifd_entries(data: bytes | bytearray) -> list[int]:
    """Offsets of the 12-byte entries of a little-endian TIFF's first IFD (those inside the file)."""
    if len(data) < 8:
        return []
    (ifd,) = struct.unpack_from("<I", data, 4)
    if ifd + 2 > len(data):
        return []
    (count,) = struct.unpack_from("<H", data, ifd)
    return [at for at in range(ifd + 2, ifd + 2 + 12 * count, 12) if at + 12 <= len(data)]


def _fix_png_crcs(data: bytearray) -> None:
    """Recompute every complete chunk's CRC, so that Pillow reads past the edited bytes."""
    at = 8
    while at + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        if at + 12 + length > len(data):
            return
        data[at + 8 + length:at + 12 + length] = struct.pack(">I", zlib.crc32(bytes(data[at + 4:at + 8 + length])))
        at += 12 + length


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """(format, bytes): a seed file, its header's size perhaps edited, then 0-4 byte mutations."""
    fmt = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[fmt])
    edited = draw(st.booleans())
    if edited:
        sizes = st.sampled_from([0, 1, 2, 17, 255, 65535, HUGE, 2**31 - 1]) | st.integers(0, 2**31 - 1)
        data = bytearray(_set_size(fmt, bytes(data), draw(sizes), draw(sizes)))
    for _ in range(draw(st.integers(0 if edited else 1, 4))):
        kind = draw(st.sampled_from(["flip", "flip", "truncate", "overwrite", "field"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "field" and fmt.startswith("tiff") and _ifd_entries(data):
            entry = draw(st.sampled_from(_ifd_entries(data)))  # a tag's type, count or value
            data[entry + draw(st.sampled_from([2, 4, 8])):entry + 12] = draw(st.binary(min_size=4, max_size=4))
        elif kind == "field":
            at = draw(st.integers(8, 32)) if fmt.startswith("png") else draw(st.integers(0, min(200, len(data) - 1)))
            data[at:at + 1] = draw(st.binary(min_size=1, max_size=1))
        elif kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        else:
            data[at:at + 4] = draw(st.binary(min_size=1, max_size=4))
    if fmt.startswith("png") and draw(st.booleans()):
        _fix_png_crcs(data)
    return fmt, bytes(data)


class TooSlow(BaseException):
    """Raised by the timer; a BaseException so that no ``except Exception`` (or OSError) swallows it."""


@contextmanager
def _time_bound(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""
    expired = []

    def expire(_signum: int, _frame: object) -> None:
        expired.append(True)
        raise TooSlow(f"read took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not expired, f"read took more than {seconds} s"


def _read_checked(path: Path) -> str:
    """Read ``path``; 'unreadable: <reason>' or 'ok HxW'. Any other exception propagates (a bug)."""
    with _time_bound(SECONDS_PER_CASE):
        try:
            frames = read_file(path, ReadOptions())
        except UnreadableFile as exc:
            assert exc.reason and "\n" not in exc.reason
            return f"unreadable: {exc.reason}"
    assert len(frames) == 1
    pixels = frames[0].pixels
    assert pixels.dtype == np.float32 and pixels.ndim in (2, 3)
    assert np.isfinite(pixels).all() and pixels.min(initial=0) >= 0.0 and pixels.max(initial=0) <= 1.0
    return f"ok {pixels.shape[0]}x{pixels.shape[1]}"


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_unmutated_seeds_read(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"seed{SUFFIX[fmt]}"
    path.write_bytes(SEEDS[fmt])
    assert _read_checked(path) == "ok 12x17"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated())
def test_mutated_files_are_read_or_refused(tmp_path: Path, case: tuple[str, bytes]) -> None:
    fmt, data = case
    path = tmp_path / f"case{SUFFIX[fmt]}"
    path.write_bytes(data)
    _read_checked(path)
    CASES_RUN["fuzz"] += 1


def test_fuzz_ran_its_cases() -> None:
    """Reports how many mutated files the fuzz test read (run after it, in file order)."""
    print(f"raster fuzz cases run: {CASES_RUN['fuzz']}")
    assert CASES_RUN["fuzz"] == 0 or CASES_RUN["fuzz"] >= 100


def _corpus() -> list[Path]:
    return sorted(path for path in CORPUS.iterdir() if path.is_file()) if CORPUS.is_dir() else []


@pytest.mark.parametrize("path", _corpus(), ids=lambda path: path.name)
def test_kept_cases_replay(path: Path) -> None:
    _read_checked(path)


# A fresh process reads each huge-header file and reports its peak RSS growth: this process's own peak
# is already high (torch, other tests), so a delta measured here would prove nothing.
MEASURE = r"""
import json, resource, sys
from pathlib import Path
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from medsearch.errors import UnreadableFile
import PIL.Image, PIL.PngImagePlugin, PIL.JpegImagePlugin, PIL.TiffImagePlugin, PIL.BmpImagePlugin
out = {}
for name in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_file(Path(name), ReadOptions())
        verdict = "read"
    except UnreadableFile as exc:
        verdict = exc.reason
    out[name] = [verdict, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024]
print(json.dumps(out))
"""


def test_huge_header_is_refused_before_allocation(tmp_path: Path) -> None:
    paths = []
    for fmt, data in SEEDS.items():
        width, height = (65535, 65535) if fmt == "jpeg" else (HUGE, HUGE)  # JPEG sizes are 16-bit
        paths.append(tmp_path / f"huge-{fmt}{SUFFIX[fmt]}")
        paths[-1].write_bytes(_set_size(fmt, data, width, height))
    done = subprocess.run([sys.executable, "-c", MEASURE, *map(str, paths)], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    for name, (verdict, grown_mb) in json.loads(done.stdout).items():
        assert verdict != "read", name
        assert grown_mb < 64, (name, verdict, grown_mb)
