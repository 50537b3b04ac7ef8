"""The bodies of WADO-RS answers: ``multipart/related`` parts, and the transfer syntax of a Part 10 file."""

from __future__ import annotations

import struct

from medsearch.indexer.dicomweb.source import SourceError

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
UNDECODABLE_SYNTAXES = frozenset(
    {f"1.2.840.10008.1.2.4.{n}" for n in (92, 93, 94, 95, *range(100, 109))}
    | {f"1.2.840.10008.1.2.7.{n}" for n in (1, 2, 3)}
)
"""JPEG 2000 Part 2 multi-component, JPIP, MPEG-2/4, HEVC and SMPTE 2110: medsearch cannot decode these,
so such instances are asked for again as Explicit VR Little Endian."""


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type. Raises SourceError when there is none."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return value.strip('"')
    raise SourceError(f"malformed WADO-RS response: Content-Type {content_type[:80]!r} has no multipart boundary")


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The bodies of the parts of a multipart message (RFC 2046), headers removed; each part is copied once
    out of ``body``. Raises SourceError for a body that is not such a message (no delimiter, a part without
    a header end, no closing delimiter)."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    view = memoryview(body)
    first = -2 if body.startswith(delimiter[2:]) else body.find(delimiter)
    if first == -1:
        raise SourceError("malformed WADO-RS response: the multipart body is truncated or has no parts")
    position = first + len(delimiter)
    parts = []
    while not body.startswith(b"--", position):
        headers_end = body.find(b"\r\n\r\n", position)
        following = body.find(delimiter, position)
        if following < 0:
            raise SourceError("malformed WADO-RS response: the multipart body is truncated (no closing boundary)")
        if headers_end < 0 or headers_end > following:
            raise SourceError("malformed WADO-RS response: a multipart part has no header end")
        parts.append(bytes(view[headers_end + 4 : following]))
        position = following + len(delimiter)
    return parts


def transfer_syntax_of(data: bytes) -> str | None:
    """The Transfer Syntax UID (0002,0010) of Part 10 ``data``, or None when it has no readable file meta."""
    if data[128:132] != b"DICM":
        return None
    offset = 132
    while offset + 8 <= len(data):
        group, element = struct.unpack_from("<HH", data, offset)
        if group != 2:
            return None
        vr = data[offset + 4 : offset + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC"):
            (length,), start = struct.unpack_from("<I", data, offset + 8), offset + 12
        else:
            (length,), start = struct.unpack_from("<H", data, offset + 6), offset + 8
        if element == 0x0010:
            return data[start : start + length].rstrip(b"\x00 ").decode("ascii", "replace")
        offset = start + length
    return None
