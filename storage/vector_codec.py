"""How image vectors are kept in the database: 12-bit, tagged; float16 or float32 in older stores.

A vector is written as ``Q12`` (4 bytes), its scale (a little-endian float32: its largest component's
magnitude over 2047), then its components as 12-bit codes ``round(x / scale) + 2048``, two to three bytes
(1 to 4095; a 0 pads an odd dimension): 1.74 KB at d = 1152, three eighths of float32's 4.6 KB and three
quarters of float16's 2.3 KB. On unit vectors of that size the cosine moves by at most ~1e-4 (float16:
~3e-5), recall@10 against float32 exact search stays 0.999 (``tests/storage/test_vector_codec.py``), far
below the 1e-3 that bf16 and int8 embedding already differ by. Stores written before hold float16 blobs
(``F16`` then the components) or float32 ones (bare). Both tags read as a float32 are NaNs, which no stored
float32 vector holds (``medsearch check`` refuses them), so the three forms are told apart by their first
four bytes and a store may hold them mixed while it upgrades in place (``medsearch.storage.shrink``). Every vector is
scaled back to unit length when read, so an image is still as similar to itself as before (1 to 1e-6).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Q12 = b"Q2\xff\x7f"
"""The first four bytes of a 12-bit vector blob, the form written now (a float32 NaN)."""
F16 = b"F2\xff\x7f"
"""The first four bytes of a float16 vector blob (a float32 NaN), written by the previous version."""
_HEAD = 8  # the tag and the scale
_LEVELS = 2047  # the largest code magnitude; codes are offset by 2048 into 1..4095


def encode(vector: np.ndarray) -> bytes:
    """The stored form of a finite (dim,) vector: ``Q12``, its scale, its 12-bit codes. Raises ValueError
    for NaN or infinity."""
    values = np.asarray(vector, dtype=np.float32).ravel()
    if not np.isfinite(values).all():
        raise ValueError("a vector to store holds NaN or infinity")
    peak = float(np.abs(values).max()) if len(values) else 0.0
    scale = np.float32(peak / _LEVELS if peak > 0 else 1.0)
    codes = (np.rint(values / scale) + 2048).astype(np.uint16)
    if len(codes) % 2:
        codes = np.append(codes, np.uint16(0))
    first, second = codes[0::2], codes[1::2]
    packed = np.empty((len(first), 3), dtype=np.uint8)
    packed[:, 0] = first & 0xFF
    packed[:, 1] = (first >> 8) | ((second & 0xF) << 4)
    packed[:, 2] = second >> 4
    return bytes(Q12 + scale.astype("<f4").tobytes() + packed.tobytes())


def decode(blob: bytes) -> np.ndarray:
    """The (dim,) float32 unit vector of a stored blob of any form (a new, writable array)."""
    if blob[:4] == Q12:
        row: np.ndarray = _unpacked(np.frombuffer(blob, dtype=np.uint8)[None, :])[0]
        return row
    if blob[:4] == F16:
        return _unit(np.frombuffer(blob, dtype="<f2", offset=4).astype(np.float32))
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def decode_many(blobs: Iterable[bytes]) -> np.ndarray:
    """(n, dim) float32 rows of stored blobs (of any form, mixed); rows all of one tag and size are
    decoded in one pass."""
    blobs = list(blobs)
    if not blobs:
        return np.empty((0, 0), dtype=np.float32)
    tag, size = blobs[0][:4], len(blobs[0])
    if tag in (Q12, F16) and all(blob[:4] == tag and len(blob) == size for blob in blobs):
        joined = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), size)
        if tag == Q12:
            return _unpacked(joined)
        return _unit(np.ascontiguousarray(joined[:, 4:]).view("<f2").astype(np.float32))
    return np.vstack([decode(blob) for blob in blobs])


def _unpacked(rows: np.ndarray) -> np.ndarray:
    """(n, dim) float32 unit vectors of (n, size) uint8 ``Q12`` blobs of one size. A pair's three bytes
    read as two overlapping little-endian 16-bit words give its codes: the word at the first byte, low 12
    bits, and the word at the second, high 12 (strided views, no copy). The scale is left out: a vector
    is scaled to unit length anyway."""
    rows = np.ascontiguousarray(rows)
    count, size = rows.shape
    pairs = (size - _HEAD) // 3
    words = {start: np.ndarray((count, pairs), dtype="<u2", buffer=rows, offset=_HEAD + start,
                               strides=(size, 3)) for start in (0, 1)}
    values = np.empty((count, pairs, 2), dtype=np.float32)
    values[:, :, 0] = words[0] & 0x0FFF
    values[:, :, 1] = words[1] >> 4
    flat = values.reshape(count, 2 * pairs)
    if pairs and _padded(rows[0]):
        flat = np.ascontiguousarray(flat[:, :-1])
    flat -= 2048
    return _unit(flat)


def _padded(blob: bytes | np.ndarray) -> bool:
    """Whether a ``Q12`` blob's last code is 0: the padding of an odd dimension (a real code is 1..4095)."""
    return int(blob[-1]) == 0 and int(blob[-2]) >> 4 == 0


def _unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` ((dim,) or (n, dim) float32) scaled to unit length where not zero, in place."""
    norms = np.sqrt(np.einsum("...i,...i->...", rows, rows))[..., np.newaxis]
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def form(blob: bytes) -> str:
    """``q12``, ``float16`` or ``float32``: the form a stored blob is in."""
    return {Q12: "q12", F16: "float16"}.get(blob[:4], "float32")


def stored_dim(blob: bytes) -> int:
    """How many components a stored blob holds (-1 when its length fits none of the forms)."""
    kind = form(blob)
    if kind == "q12":
        if (len(blob) - _HEAD) % 3:
            return -1
        pairs = (len(blob) - _HEAD) // 3
        return 2 * pairs - (1 if pairs and _padded(blob) else 0)
    if kind == "float16":
        return (len(blob) - 4) // 2 if len(blob) % 2 == 0 else -1
    return len(blob) // 4 if len(blob) % 4 == 0 else -1
