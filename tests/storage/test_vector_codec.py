"""The stored vector forms (``medsearch.storage.vector_codec``): 12-bit blobs written now, float16 and float32 ones of
older stores read alongside; what the 12 bits cost in cosine and in recall against float32 search."""

from __future__ import annotations

import numpy as np
import pytest
from medsearch.storage import vector_codec

OLDER_FORMS = {  # how the earlier versions wrote a vector
    "float32": lambda v: np.ascontiguousarray(v, dtype="<f4").tobytes(),
    "float16": lambda v: vector_codec.F16 + np.ascontiguousarray(v, dtype="<f2").tobytes(),
}
F16, F32 = OLDER_FORMS["float16"], OLDER_FORMS["float32"]


def unit_rows(count: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("dim", [1, 7, 16, 1152])
def test_a_vector_comes_back_unit_length_and_close(dim: int) -> None:
    for vector in unit_rows(50, dim, dim):
        blob = vector_codec.encode(vector)
        assert blob[:4] == vector_codec.Q12 and len(blob) == 8 + 3 * ((dim + 1) // 2)
        assert vector_codec.form(blob) == "q12" and vector_codec.stored_dim(blob) == dim
        back = vector_codec.decode(blob)
        assert back.shape == (dim,) and back.dtype == np.float32
        assert abs(float(np.linalg.norm(back)) - 1) < 1e-6
        assert np.abs(back - vector).max() <= np.abs(vector).max() / 2047  # half a step, then renormalised


def test_cosines_move_by_at_most_1e_4_at_medsiglip_size() -> None:
    images, queries = unit_rows(2000, 1152, 1), unit_rows(50, 1152, 2)
    stored = vector_codec.decode_many(vector_codec.encode(row) for row in images)
    moved = np.abs(queries @ stored.T - queries @ images.T)
    assert moved.max() < 1.5e-4 and moved.mean() < 3e-5
    assert np.abs(np.sum(stored * images, axis=1) - 1).max() < 1e-6  # an image is itself to 1e-6
    half = vector_codec.decode_many(F16(row) for row in images)
    assert np.abs(queries @ half.T - queries @ images.T).max() < moved.max()  # float16 is finer, as said


def test_recall_against_float32_search_stays_above_0_995() -> None:
    """Clustered rows (near neighbours nearly tied, as in the scale benchmark): the top 10 by the stored
    vectors against the top 10 by the float32 ones."""
    rng = np.random.default_rng(3)
    means = rng.standard_normal((40, 1152)).astype(np.float32)
    rows = means[rng.integers(0, 40, 20_000)] + 0.8 * rng.standard_normal((20_000, 1152)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    queries = rows[rng.integers(0, len(rows), 100)] + 0.3 * rng.standard_normal((100, 1152)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    stored = vector_codec.decode_many(vector_codec.encode(row) for row in rows)
    exact = np.argsort(-(queries @ rows.T), axis=1)[:, :10]
    found = np.argsort(-(queries @ stored.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found, strict=True)])
    assert recall >= 0.995


def test_a_vector_with_a_few_large_components_keeps_its_cosines() -> None:
    """Transformer embeddings often have a few outsized dimensions, which coarsen a per-vector scale."""
    images, queries = unit_rows(500, 1152, 4), unit_rows(20, 1152, 5)
    images[:, :4] *= 12
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    stored = vector_codec.decode_many(vector_codec.encode(row) for row in images)
    assert np.abs(queries @ stored.T - queries @ images.T).max() < 5e-4


def test_older_forms_read_alone_and_mixed() -> None:
    rows = unit_rows(6, 32, 6)
    blobs = [vector_codec.encode(rows[0]), F16(rows[1]), F32(rows[2]), vector_codec.encode(rows[3]),
             F16(rows[4]), F32(rows[5])]
    assert [vector_codec.form(blob) for blob in blobs] == ["q12", "float16", "float32"] * 2
    assert [vector_codec.stored_dim(blob) for blob in blobs] == [32] * 6
    mixed = vector_codec.decode_many(blobs)
    np.testing.assert_allclose(mixed, rows, atol=2e-3)
    np.testing.assert_allclose(mixed, np.vstack([vector_codec.decode(blob) for blob in blobs]), atol=0)
    np.testing.assert_array_equal(vector_codec.decode_many(F32(row) for row in rows), rows)
    np.testing.assert_allclose(vector_codec.decode_many([F16(row) for row in rows]), rows, atol=1e-3)


def test_odd_dimensions_and_zero_vectors_round_trip() -> None:
    blobs = [vector_codec.encode(np.zeros(5, np.float32)), vector_codec.encode(np.array([0, 0, 0, 0, 1.0]))]
    assert [vector_codec.stored_dim(blob) for blob in blobs] == [5, 5]
    np.testing.assert_array_equal(vector_codec.decode_many(blobs), [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1]])
    assert vector_codec.stored_dim(vector_codec.Q12 + b"\0" * 5) == -1  # the codes cut off
    assert vector_codec.decode_many([]).shape == (0, 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_vector_that_is_not_finite_is_refused(bad: float) -> None:
    vector = unit_rows(1, 8, 7)[0]
    vector[3] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        vector_codec.encode(vector)
