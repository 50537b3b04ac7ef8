"""Deflated Image Frame Compression (1.2.840.10008.1.2.8.1): pydicom 3.0 does not know the UID, so the
file is rejected with a reason naming the syntax (not "corrupt header: UID is not a transfer syntax").
The file is written here: real CT pixels, each frame raw-deflated, encapsulated, Explicit VR Little Endian."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from medsearch.errors import UnreadableFile
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEGLossless

DEFLATED_FRAMES = "1.2.840.10008.1.2.8.1"


def deflated_frames_file(path: Path) -> Path:
    """pydicom refuses to write an unknown syntax, so write JPEG Lossless (a UID of the same padded
    length, 22 bytes) and swap the UID in the file meta."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    ds.PixelData = encapsulate([packer.compress(ds.pixel_array.tobytes()) + packer.flush()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = JPEGLossless
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert data.count(JPEGLossless.encode()) == 1
    path.write_bytes(data.replace(JPEGLossless.encode(), DEFLATED_FRAMES.encode() + b"\x00"))
    return path


def test_deflated_image_frame_compression_is_named(tmp_path: Path) -> None:
    path = deflated_frames_file(tmp_path / "deflated.dcm")
    if UID(DEFLATED_FRAMES).is_transfer_syntax:  # a pydicom that knows it: it must then decode
        frames = read_file(path, ReadOptions())
        assert frames[0].pixels.shape == (128, 128)
        return
    with pytest.raises(UnreadableFile) as caught:
        read_file(path, ReadOptions())
    assert caught.value.reason.startswith(f"unsupported transfer syntax: Deflated Image Frame Compression "
                                          f"({DEFLATED_FRAMES})")
    assert "not a transfer syntax" not in caught.value.reason


def test_other_unknown_uids_are_named_too(tmp_path: Path) -> None:
    data = deflated_frames_file(tmp_path / "x.dcm").read_bytes()
    odd = tmp_path / "odd.dcm"
    odd.write_bytes(data.replace(DEFLATED_FRAMES.encode() + b"\x00", b"1.2.840.10008.9.9.9.99"))
    with pytest.raises(UnreadableFile, match=r"a transfer syntax unknown to pydicom \(1\.2\.840\.10008\.9\.9\.9\.99\)"):
        read_file(odd, ReadOptions())
