"""Transfer syntaxes newer than the pydicom medsearch runs on: pydicom 3.0 parses no dataset whose file
meta declares a UID it does not know ("UID is not a transfer syntax"), so the reason names the syntax
from the file meta instead."""

from __future__ import annotations

import struct

from medsearch.errors import UnreadableFile

_VRS = {b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OD", b"OF",
        b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM", b"UC", b"UI", b"UL", b"UN",
        b"UR", b"US", b"UT", b"UV"}


def looks_like_dataset(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts like a DICOM dataset written without the 128-byte
    preamble and ``DICM`` prefix: a little-endian element of group 0002 or 0008 (the first groups of a
    dataset), in explicit VR (a known VR follows the tag) or implicit VR (a short length follows)."""
    if len(head) < 8:
        return False
    group, _element = struct.unpack_from("<HH", head)
    if group not in (0x0002, 0x0008):
        return False
    return head[4:6] in _VRS or struct.unpack_from("<L", head, 4)[0] < 1024


UNKNOWN_SYNTAX_NAMES = {"1.2.840.10008.1.2.8.1": "Deflated Image Frame Compression"}
"""Names of transfer syntaxes pydicom may not know."""


def reject_unknown_syntax(head: bytes) -> None:
    """Raise ``UnreadableFile`` naming the transfer syntax when the file meta (``head``: the file's first
    bytes) declares one this pydicom does not know, such as Deflated Image Frame Compression
    (1.2.840.10008.1.2.8.1, DICOM 2024); pydicom then fails with "UID is not a transfer syntax"."""
    from pydicom import __version__
    from pydicom.uid import UID

    at = head.find(b"\x02\x00\x10\x00UI")  # (0002,0010) Transfer Syntax UID, always explicit VR LE
    if at < 0 or at + 8 > len(head):
        return
    length = struct.unpack_from("<H", head, at + 6)[0]
    uid = UID(head[at + 8 : at + 8 + length].decode("ascii", "replace").strip("\x00 "))
    if uid and not uid.is_transfer_syntax:
        name = UNKNOWN_SYNTAX_NAMES.get(str(uid), "a transfer syntax unknown to pydicom")
        raise UnreadableFile(f"unsupported transfer syntax: {name} ({uid}); pydicom {__version__} cannot decode it")
