"""How image vectors are kept in the database: float16, tagged, or float32 (stores written before).

A float16 blob is ``MAGIC`` followed by the little-endian float16 components (2 bytes each: 2.3 KB at
d = 1152, half of float32). ``MAGIC`` read as a float32 is a NaN, and no stored float32 vector holds one
(``medsearch check`` refuses them), so the two forms are told apart by their first four bytes and a
store may hold both while it upgrades in place. Unit vectors lose about 1e-4 of cosine in float16,
below the 1e-3 that bf16 and int8 embedding already differ by; a float16 vector is scaled back to unit
length when read, so an image is still exactly as similar to itself as before (1 to 1e-6).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

MAGIC = b"F2\xff\x7f"
"""The first four bytes of a float16 vector blob (a float32 NaN)."""


def encode(vector: np.ndarray) -> bytes:
    """The stored form of a (dim,) vector: ``MAGIC`` then its float16 components."""
    return MAGIC + np.ascontiguousarray(vector, dtype="<f2").tobytes()


def decode(blob: bytes) -> np.ndarray:
    """The (dim,) float32 vector of a stored blob of either form (a new, writable array)."""
    if blob[:4] == MAGIC:
        return _unit(np.frombuffer(blob, dtype="<f2", offset=4).astype(np.float32))
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def decode_many(blobs: Iterable[bytes]) -> np.ndarray:
    """(n, dim) float32 rows of stored blobs (of either form, mixed); all-float16 rows of one size are
    decoded in one pass."""
    blobs = list(blobs)
    if not blobs:
        return np.empty((0, 0), dtype=np.float32)
    size = len(blobs[0])
    if all(blob[:4] == MAGIC and len(blob) == size for blob in blobs):
        joined = np.frombuffer(b"".join(blob[4:] for blob in blobs), dtype="<f2")
        return _unit(joined.reshape(len(blobs), (size - 4) // 2).astype(np.float32))
    return np.vstack([decode(blob) for blob in blobs])


def _unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` ((dim,) or (n, dim) float32) scaled to unit length where not zero, in place."""
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def is_float16(blob: bytes) -> bool:
    """Whether a stored blob is in the float16 form."""
    return blob[:4] == MAGIC


def stored_dim(blob: bytes) -> int:
    """How many components a stored blob holds (-1 when its length fits neither form)."""
    if is_float16(blob):
        return (len(blob) - 4) // 2 if len(blob) % 2 == 0 else -1
    return len(blob) // 4 if len(blob) % 4 == 0 else -1
