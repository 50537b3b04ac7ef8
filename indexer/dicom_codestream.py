"""The frame size a JPEG, JPEG-LS or JPEG 2000 codestream declares in its own header, which is what those
decoders allocate for: the DICOM reader rejects frames that disagree with Rows/Columns before decoding
them (a 3 KB codestream can otherwise claim gigabytes)."""

from __future__ import annotations

import struct

_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  "
_JPEG_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7}  # SOF0-15 and JPEG-LS SOF55


def codestream_size(frame: bytes) -> tuple[int, int] | None:
    """``(width, height)`` declared by a JPEG 2000 (SIZ marker, in a JP2 wrapper or not), JPEG or
    JPEG-LS (SOFn marker) frame; None when the frame is neither or the size is not in the header.

    Raises ValueError for a JP2 wrapper with a zero-length box before the codestream (pydicom 3.0's
    JP2 parser loops forever on one)."""
    start = _jp2_codestream_offset(frame) if frame.startswith(_JP2_SIGNATURE) else 0
    if frame.startswith(_J2K_SOC_SIZ, start) and len(frame) >= start + 24:
        x_size, y_size, x_origin, y_origin = struct.unpack_from(">4L", frame, start + 8)
        return x_size - x_origin, y_size - y_origin
    if not frame.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 9 <= len(frame) and frame[position] == 0xFF:
        marker = frame[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", frame, position + 5)
            return (width, height) if height else None  # height 0: set later by a DNL marker
        elif marker in (0xDA, 0xD9):  # start of scan, end of image: no frame header before
            return None
        else:
            position += 2 + struct.unpack_from(">H", frame, position + 2)[0]
    return None


def _jp2_codestream_offset(frame: bytes) -> int:
    """Where the codestream (``jp2c`` box contents) starts in a JP2-wrapped frame; ``len(frame)``
    when there is no such box."""
    offset = 12  # after the signature box
    while offset < len(frame):
        length = int.from_bytes(frame[offset : offset + 4], "big")
        if frame[offset + 4 : offset + 8] == b"jp2c":
            return offset + 8
        if length == 0:
            raise ValueError("malformed JP2 wrapper: a zero-length box before the codestream")
        offset += length
    return len(frame)
