"""One byte per component: the ``int8`` rows of a vector file (``medsearch.storage.vector_file``).

Each dimension d has an offset m_d and a step s_d fitted on a sample of the vectors (their minimum and
range over 255 steps); a component x_d is stored as the byte c_d = round((x_d - m_d) / s_d), clipped to
0..255, so x_d ~ m_d + s_d * c_d. A query q then scores a row without decoding it:
q . x = q . m + (q * s) . c: one uint8 -> float32 conversion of the rows and one product, no dearer than
the float32 rows' product (the re-rank of 500 cached rows at 1 M: 1.5 ms against 1.6-1.9 ms for float32
rows and 2.8-3.0 ms for float16 ones on a busy 2-core CPU: ``benchmarks/bench_scale.py --rerank``). A
component outside the fitted range is clipped to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

LEVELS = 255
FIT_SAMPLE = 65_536
"""How many vectors at most a quantizer is fitted on."""


class Quantizer(NamedTuple):
    """Per-dimension ``offset`` and ``step`` (float32, (dim,)): x ~ offset + step * code."""

    offset: np.ndarray
    step: np.ndarray

    @classmethod
    def fitted(cls, sample: np.ndarray, dim: int) -> Quantizer:
        """Fitted to (n, dim) float ``sample``: its per-dimension minimum and range. Without a sample,
        the range of a unit vector's components, -1..1."""
        if len(sample) == 0:
            return cls(np.full(dim, -1.0, np.float32), np.full(dim, 2.0 / LEVELS, np.float32))
        sample = np.asarray(sample, dtype=np.float32).reshape(-1, dim)
        low, high = sample.min(axis=0), sample.max(axis=0)
        step = np.maximum(high - low, 1e-6) / LEVELS
        return cls(low.astype(np.float32), step.astype(np.float32))

    @classmethod
    def from_bytes(cls, block: bytes, dim: int) -> Quantizer:
        """The quantizer ``to_bytes`` wrote (the offsets, then the steps, little-endian float32)."""
        values = np.frombuffer(block, dtype="<f4", count=2 * dim).astype(np.float32)
        return cls(values[:dim].copy(), values[dim:].copy())

    def to_bytes(self) -> bytes:
        return np.concatenate([self.offset, self.step]).astype("<f4").tobytes()

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """(n, dim) float rows as (n, dim) uint8 codes."""
        codes = np.rint((np.asarray(rows, dtype=np.float32) - self.offset) / self.step)
        return np.clip(codes, 0, LEVELS).astype(np.uint8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(n, dim) uint8 codes as (n, dim) float32 rows."""
        return codes.astype(np.float32) * self.step + self.offset


class QuantizedRows(NamedTuple):
    """Rows as the re-rank reads them from an int8 vector file: (n, dim) uint8 ``codes``, their
    ``quantizer``, which rows are ``stored`` (the others' scores are meaningless), and where the exact
    float32 rows of ids are read (the database), for the re-rank's best few (None: scored by the codes)."""

    codes: np.ndarray
    quantizer: Quantizer
    stored: np.ndarray
    exact: Callable[[np.ndarray], np.ndarray] | None = None

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(n, q) inner products of the rows with (q, dim) float32 ``queries``, without decoding the rows."""
        scaled = (queries * self.quantizer.step).T
        return self.codes.astype(np.float32) @ scaled + queries @ self.quantizer.offset
