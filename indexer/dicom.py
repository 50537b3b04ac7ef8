"""DICOM through pydicom 3: header checks, frame selection, decoding, and display pixels.

Supported transfer syntaxes (with the plugins medsearch installs: pylibjpeg, pylibjpeg-libjpeg,
pylibjpeg-openjpeg, pylibjpeg-rle, pyjpegls; Pillow as a fallback for JPEG and JPEG 2000):

* Implicit VR Little Endian (1.2.840.10008.1.2)
* Explicit VR Little Endian (1.2.840.10008.1.2.1)
* Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99)
* Explicit VR Big Endian (1.2.840.10008.1.2.2)
* JPEG Baseline, 8-bit (1.2.840.10008.1.2.4.50)
* JPEG Extended, 12-bit (1.2.840.10008.1.2.4.51)
* JPEG Lossless (1.2.840.10008.1.2.4.57) and JPEG Lossless SV1 (1.2.840.10008.1.2.4.70)
* JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and Near-Lossless (1.2.840.10008.1.2.4.81)
* JPEG 2000 Lossless (1.2.840.10008.1.2.4.90) and JPEG 2000 (1.2.840.10008.1.2.4.91)
* HTJ2K Lossless (1.2.840.10008.1.2.4.201), HTJ2K Lossless RPCL (1.2.840.10008.1.2.4.202) and
  HTJ2K (1.2.840.10008.1.2.4.203), through OpenJPEG
* RLE Lossless (1.2.840.10008.1.2.5)

Not supported (rejected with a reason naming the syntax): JPEG 2000 Part 2 multi-component, MPEG-2,
MPEG-4, HEVC, JPIP referenced, SMPTE ST 2110, and Deflated Image Frame Compression (1.2.840.10008.1.2.8.1)
while pydicom cannot decode it (pydicom 3.0 does not know the UID; a pydicom that decodes it is used).
Files without the 128-byte preamble and ``DICM`` prefix are read when they end in ``.dcm``. Float and
double-float pixel data are rejected.

Photometric interpretations: MONOCHROME1 (inverted), MONOCHROME2, RGB, YBR_FULL and YBR_FULL_422
(converted to RGB by pydicom), YBR_ICT and YBR_RCT (JPEG 2000; converted by the codec), PALETTE COLOR
(through its lookup table).
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from medsearch.errors import ImageTooLarge, NotFound, UnreadableFile
from medsearch.indexer.dicom_checks import check_mosaic, check_native_length
from medsearch.indexer.dicom_codestream import codestream_size
from medsearch.indexer.dicom_frames import decode_frames
from medsearch.indexer.dicom_meta import file_metadata, quiet_pydicom
from medsearch.indexer.dicom_sr import ReportFound, is_structured_report, read_report
from medsearch.indexer.dicom_syntax import looks_like_dataset, reject_unknown_syntax
from medsearch.indexer.frames import Frame, ReadOptions
from medsearch.indexer.isolation import DecodeGuard
from medsearch.indexer.windows import parse_window

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pydicom.uid import UID

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic"}
GZIP_MAGIC = b"\x1f\x8b"
COLOUR_PHOTOMETRICS = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}
GREY_PHOTOMETRICS = {"MONOCHROME1", "MONOCHROME2"}
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}


@dataclass
class _Source:
    """A parsed header and where its pixels are decoded from: the open file, or the fully read
    dataset (deflated files, and files whose pixel data element is encoded against their syntax)."""

    ds: Dataset
    transfer_syntax: UID
    pixel_keyword: str | None
    decode_from: BinaryIO | Dataset
    pixel_offset: int = 0  # where the pixel data element starts in the file (file sources only)
    pixel_length: int | None = None  # its value length; None when undefined (encapsulated)


class DicomReader:
    """Reads DICOM files into display-ready frames (see the module docstring for what is supported)."""

    name = "dicom"

    def accepts(self, path: Path, head: bytes) -> bool:
        """DICOM by suffix, ``DICM`` prefix or a dataset without preamble (``looks_like_dataset``); gzip
        files too, to say they must be decompressed."""
        return (path.suffix.lower() in DICOM_SUFFIXES or head[128:132] == b"DICM" or head[:2] == GZIP_MAGIC
                or looks_like_dataset(head))

    def read(self, path: Path, options: ReadOptions) -> list[Frame]:
        """``path`` -> frames: float32 [0, 1], (H, W) or (H, W, 3); one frame (the middle one) or all,
        as ``options.frames`` says. Raises ``UnreadableFile`` with a reason; ``InvalidQuery`` only for
        a malformed ``options.window``."""
        window = parse_window(options.window)
        try:  # an upload held in memory (``medsearch.indexer.memory_read.MemoryFile``) is already a binary file
            handle = path if isinstance(path, io.BytesIO) else open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UnreadableFile(f"cannot open file: {exc.strerror or exc}") from exc
        with handle, quiet_pydicom(), DecodeGuard("unreadable DICOM file"):
            return _read_open_file(cast(BinaryIO, CappedReader(handle)), path, options, window)


def _read_open_file(
    handle: BinaryIO, path: Path, options: ReadOptions, window: tuple[float, float] | None
) -> list[Frame]:
    head = handle.read(132)
    if not head:
        raise UnreadableFile("empty file (0 bytes)")
    if head.startswith(GZIP_MAGIC):
        raise UnreadableFile("gzip-compressed file; decompress it first")
    handle.seek(0)
    try:
        with DecodeGuard("corrupt or truncated DICOM header"):
            forced_ok = path.suffix.lower() in DICOM_SUFFIXES or looks_like_dataset(head)
            source = _parse_header(handle, forced_ok=forced_ok)
    except UnreadableFile:
        handle.seek(0)
        reject_unknown_syntax(handle.read(4096))
        raise
    ds = source.ds
    if source.pixel_keyword is None and is_structured_report(ds):
        raise ReportFound(read_report(ds, options.patient_key_secret))
    indices = _frame_indices(ds, options)
    _check_pixel_element(source)
    _check_image_size(ds, len(indices), options.max_pixels)
    _check_codestreams(source, indices)
    length = len(ds.PixelData) if source.pixel_length is None and "PixelData" in ds else source.pixel_length
    check_native_length(ds, source.transfer_syntax, length, _frame_count(ds))
    metadata = file_metadata(ds, options, source.transfer_syntax.keyword or str(source.transfer_syntax))
    check_mosaic(ds)
    return decode_frames(source, _frame_count(ds), indices, window, options, metadata)


class CappedReader:
    """A binary file whose ``read(n)`` never asks for more than the bytes left: a corrupt length field
    (up to 4 GiB) then gives a short read, which pydicom reports, instead of a giant allocation."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        position = handle.tell()
        self._size = handle.seek(0, os.SEEK_END)
        handle.seek(position)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._handle.read()
        return self._handle.read(min(size, max(0, self._size - self._handle.tell())))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _parse_header(handle: BinaryIO, forced_ok: bool) -> _Source:
    """Parse everything up to the pixel data and see which pixel data element follows. Deflated
    files, and files whose pixel data element is not encoded as their transfer syntax says, are
    read whole and decoded from the dataset (pydicom copes with those only there)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    force = False
    try:
        ds = dcmread(handle, stop_before_pixels=True)
    except InvalidDicomError:
        if not forced_ok:
            raise UnreadableFile("not a DICOM file (no DICM prefix)") from None
        handle.seek(0)
        force = True
        ds = dcmread(handle, stop_before_pixels=True, force=True)
        if "SOPClassUID" not in ds and "Rows" not in ds:
            raise UnreadableFile("not a DICOM file (no DICM prefix, no image attributes)") from None
    syntax = _transfer_syntax(ds)
    if syntax != DeflatedExplicitVRLittleEndian:
        offset = handle.tell()
        keyword, length = _peek_pixel_element(handle.read(12), syntax)
        if keyword != "?":
            return _Source(ds, syntax, keyword, handle, offset, length)
    handle.seek(0)
    full = dcmread(handle, force=force)
    keyword = next((name for name in _PIXEL_TAGS.values() if name in full), None)
    return _Source(full, syntax, keyword, full)


def _peek_pixel_element(element: bytes, syntax: UID) -> tuple[str | None, int | None]:
    """The pixel data keyword and value length (None: undefined) of the element header at the end of
    the dataset; keyword None when there is none, ``"?"`` when it is not encoded as ``syntax`` says."""
    if len(element) < 12:
        return None, None
    group, number = struct.unpack_from("<HH" if syntax.is_little_endian else ">HH", element)
    keyword = _PIXEL_TAGS.get(group << 16 | number)
    if keyword is None:
        return None, None
    if not syntax.is_implicit_VR and not element[4:6].isalpha():
        return "?", None
    length_format = ("<" if syntax.is_little_endian else ">") + "L"
    length = struct.unpack_from(length_format, element, 4 if syntax.is_implicit_VR else 8)[0]
    return keyword, None if length == 0xFFFFFFFF else length


def _transfer_syntax(ds: Dataset) -> UID:
    """The file's Transfer Syntax UID, or the encoding pydicom found for a file without one."""
    from pydicom import uid

    declared = getattr(ds, "file_meta", None) and ds.file_meta.get("TransferSyntaxUID")
    if declared:
        return uid.UID(str(declared).strip("\x00 "))
    implicit, little = ds.original_encoding
    if implicit:
        return uid.ImplicitVRLittleEndian
    return uid.ExplicitVRLittleEndian if little else uid.ExplicitVRBigEndian


def _frame_count(ds: Dataset) -> int:
    value = ds.get("NumberOfFrames")
    if value in (None, ""):
        return 1
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise UnreadableFile("invalid Number of Frames") from None
    if count < 1:
        raise UnreadableFile(f"invalid Number of Frames ({count})")
    return count


def _frame_indices(ds: Dataset, options: ReadOptions) -> list[int]:
    """0-based frames to decode: the one asked for (``options.frame``), the middle one (``count // 2``) or
    all of them. Raises NotFound for a frame the file does not have."""
    count = _frame_count(ds)
    if options.frame is not None:
        if not 1 <= options.frame <= count:
            raise NotFound(f"the file has no frame {options.frame} ({count} frame(s))")
        return [options.frame - 1]
    return list(range(count)) if options.frames == "all" else [count // 2]


def _check_pixel_element(source: _Source) -> None:
    """Reject files without integer pixel data, with an undecodable transfer syntax, or cut short."""
    from pydicom.dataset import Dataset
    from pydicom.pixels import get_decoder

    ds, syntax = source.ds, source.transfer_syntax
    if source.pixel_keyword is None:
        kind = _describe_object(ds)
        hint = "; the file may be truncated" if "Image Storage" in kind or "Rows" in ds else ""
        raise UnreadableFile(f"no pixel data ({kind}{hint})")
    if source.pixel_keyword != "PixelData":
        raise UnreadableFile(f"float pixel data ({source.pixel_keyword}) is not supported")
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnreadableFile(f"unsupported transfer syntax: {syntax.name} ({syntax})") from None
    if not decoder.is_available:
        raise UnreadableFile(f"no decoder installed for transfer syntax {syntax.name} ({syntax})")
    if source.pixel_length is not None and not isinstance(source.decode_from, Dataset):
        stream = source.decode_from  # a file or an upload in memory: its size by seeking to the end
        here = stream.tell()
        present = stream.seek(0, io.SEEK_END) - source.pixel_offset
        stream.seek(here)
        present -= 8 if syntax.is_implicit_VR else 12
        if present < source.pixel_length:
            raise UnreadableFile(f"truncated file: {present} of {source.pixel_length} bytes of pixel data")


def _check_image_size(ds: Dataset, frame_count: int, max_pixels: int) -> None:
    """Reject a missing or unsupported image description, and more than ``max_pixels`` values
    (rows x columns x samples x frames to decode), from the header alone."""
    rows, columns, samples = (_positive(ds, name) for name in ("Rows", "Columns", "SamplesPerPixel"))
    _positive(ds, "BitsAllocated")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in GREY_PHOTOMETRICS | COLOUR_PHOTOMETRICS | {"PALETTE COLOR"}:
        raise UnreadableFile(f"unsupported photometric interpretation {photometric or '(missing)'!r}")
    total = rows * columns * samples * frame_count
    if total > max_pixels:
        raise ImageTooLarge(
            f"image too large: {rows} x {columns} x {samples} samples x {frame_count} frame(s) = "
            f"{total} values to decode > limit {max_pixels}"
        )


def _check_codestreams(source: _Source, indices: list[int]) -> None:
    """Reject JPEG, JPEG-LS and JPEG 2000 frames whose own header declares another size than Rows x
    Columns, before a native decoder allocates for the declared size."""
    ds, syntax = source.ds, source.transfer_syntax
    if not syntax.is_encapsulated or syntax == RLE_LOSSLESS:  # RLE decoders size by the header
        return
    expected = (int(ds.Columns), int(ds.Rows))
    for index, frame in zip(indices, _compressed_frames(source, indices), strict=False):
        try:
            declared = codestream_size(frame)
        except ValueError as exc:
            raise UnreadableFile(f"frame {index + 1}: {exc}") from None
        if declared is not None and declared != expected:
            raise UnreadableFile(
                f"frame {index + 1} declares {declared[0]} x {declared[1]} pixels in its codestream "
                f"but the header says {expected[0]} x {expected[1]}"
            )


def _compressed_frames(source: _Source, indices: list[int]) -> Iterator[bytes]:
    """The encoded bytes of the frames in ``indices`` (one frame, or all of them in order)."""
    from pydicom.dataset import Dataset
    from pydicom.encaps import generate_frames, get_frame

    ds, syntax = source.ds, source.transfer_syntax
    if isinstance(source.decode_from, Dataset):
        buffer: Any = ds.PixelData
    else:
        buffer = source.decode_from
        buffer.seek(source.pixel_offset + (8 if syntax.is_implicit_VR else 12))
    count = _frame_count(ds)
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
    with DecodeGuard("cannot find the frames in the pixel data"):
        if len(indices) == 1:
            yield get_frame(buffer, indices[0], number_of_frames=count, extended_offsets=offsets)
        else:
            yield from generate_frames(buffer, number_of_frames=count, extended_offsets=offsets)


def _positive(ds: Dataset, keyword: str) -> int:
    try:
        value = int(ds.get(keyword))
    except (TypeError, ValueError):
        raise UnreadableFile(f"missing or invalid {keyword}") from None
    if value <= 0:
        raise UnreadableFile(f"missing or invalid {keyword} ({value})")
    return value


def _describe_object(ds: Dataset) -> str:
    """``Basic Text SR Storage`` / ``modality RTPLAN`` / ``no SOP class``: what a pixel-less file is."""
    sop_class = ds.get("SOPClassUID")
    if not sop_class and getattr(ds, "file_meta", None):
        sop_class = ds.file_meta.get("MediaStorageSOPClassUID")
    if sop_class:
        return str(getattr(sop_class, "name", sop_class))[:80]
    modality = str(ds.get("Modality") or "").strip()
    return f"modality {modality[:16]}" if modality else "no SOP class"
