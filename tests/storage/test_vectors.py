"""The FAISS index kinds against brute force on clustered data: recall, filtered search, removal and
snapshots, plus the index choice rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.storage import faiss_calls, index_choice, snapshot, vectors
from medsearch.storage.faiss_calls import index_type_of, search_index

DIM = 64
COUNT = 4000


def clustered(count: int, dim: int, seed: int, centres: int = 40) -> np.ndarray:
    """(count, dim) float32 unit rows from a mixture of Gaussians."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centres, dim))
    rows = means[rng.integers(0, centres, count)] + 0.6 * rng.normal(size=(count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def exact(data: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ data.T), axis=1)[:, :k]
    return ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.arange(COUNT, dtype=np.int64) * 3 + 7  # ids unlike positions
    return ids, clustered(COUNT, DIM, 0), clustered(50, DIM, 1)


class Held:
    """An index with the vectors it holds by id: the stored vectors an ivf-pq index re-ranks by (a store
    reads them from its database)."""

    def __init__(self, index: Any, ids: np.ndarray, rows: np.ndarray) -> None:
        self.index = index
        self.rows = dict(zip(ids.tolist(), rows, strict=True))
        self.ntotal = index.ntotal

    def add(self, ids: np.ndarray, rows: np.ndarray) -> None:
        vectors.add(self.index, ids, rows)
        self.rows.update(zip(ids.tolist(), rows, strict=True))

    def exact(self, ids: np.ndarray) -> np.ndarray:
        zero = np.zeros(DIM, dtype=np.float32)
        return np.vstack([self.rows.get(i, zero) for i in ids.tolist()])

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        return vectors.search(self.index, queries, k, allowed_ids, exact=self.exact)


def build(kind: str, ids: np.ndarray, rows: np.ndarray) -> Held:
    trained = index_choice.is_trained_kind(kind)
    index = vectors.new_index(DIM, kind, sample=rows if trained else None, count=len(rows))
    vectors.add(index, ids, rows)
    return Held(index, ids, rows)


@pytest.mark.parametrize("kind", index_choice.INDEX_TYPES)
def test_recall_against_brute_force(kind: str, data: tuple) -> None:
    ids, rows, queries = data
    index = build(kind, ids, rows)
    assert index_type_of(index.index) == kind
    scores, found = index.search(queries, 10)
    assert recall(found, exact(rows, ids, queries, 10)) >= (1.0 if kind == "flat" else 0.95)
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("kind", index_choice.INDEX_TYPES)
@pytest.mark.parametrize("keep", [3, 25, 400, 3000])
def test_filtered_search_returns_k_allowed_ids(kind: str, keep: int, data: tuple,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ids, rows, queries = data
    monkeypatch.setattr(vectors, "SUBSET_EXACT_MAX", 100)  # exercise both the exact and the selector routes
    index = build(kind, ids, rows)
    picked = np.random.default_rng(keep).choice(len(ids), keep, replace=False)
    allowed = ids[picked]
    _scores, found = index.search(queries, 10, allowed_ids=allowed)
    assert set(found[found >= 0].tolist()) <= set(allowed.tolist())
    assert (found >= 0).sum(axis=1).min() == min(10, keep)
    assert recall(found[:, : min(10, keep)], exact(rows[picked], allowed, queries, min(10, keep))) >= 0.9


@pytest.mark.parametrize("kind", index_choice.INDEX_TYPES)
def test_filter_with_ids_missing_from_the_index(kind: str, data: tuple) -> None:
    ids, rows, queries = data
    index = build(kind, ids, rows)
    allowed = np.array([ids[5], ids[9], 10**9], dtype=np.int64)
    _scores, found = index.search(queries[:2], 5, allowed_ids=allowed)
    assert set(found[found >= 0].tolist()) == {ids[5], ids[9]}
    assert (found[:, 2:] == -1).all()


@pytest.mark.parametrize("kind", index_choice.INDEX_TYPES)
def test_removal_and_replacement(kind: str, data: tuple) -> None:
    ids, rows, queries = data
    index = build(kind, ids, rows)
    gone = ids[:500]
    assert vectors.remove(index.index, np.concatenate([gone, [10**9]])) == 500
    assert vectors.remove(index.index, gone[:10]) == 0  # already gone
    assert vectors.live_count(index.index) == COUNT - 500
    assert sorted(vectors.ids(index.index).tolist()) == sorted(ids[500:].tolist())
    _scores, found = index.search(rows[:20], 10)
    assert not set(found.ravel().tolist()) & set(gone.tolist())
    assert (found >= 0).all()
    index.add(ids[600:601], queries[:1])  # replacing an id keeps one vector under it
    assert vectors.live_count(index.index) == COUNT - 500
    _scores, found = index.search(queries[:1], 1)
    assert found[0, 0] == ids[600]


def test_hnsw_removal_leaves_tombstones_that_are_never_returned(data: tuple, tmp_path: Path) -> None:
    """Removing from an HNSW graph costs no rebuild: the nodes stay (ntotal) but no search route returns
    them, they survive a snapshot, and the remaining vectors are still found as brute force finds them."""
    ids, rows, queries = data
    index = build("hnsw", ids, rows)
    gone = ids[::10]  # 10 %: below the compaction threshold
    assert vectors.remove(index.index, gone) == len(gone)
    assert index.index.ntotal == COUNT and vectors.live_count(index.index) == COUNT - len(gone)
    keep = ~np.isin(ids, gone)
    truth = exact(rows[keep], ids[keep], queries, 10)
    allowed_many = ids[:3000]  # the filtered search route: includes removed ids
    allowed_few = ids[:40]  # the exact-subset route
    snapshot.save_snapshot(index.index, tmp_path, generation=1, model_revision="r", index_type="hnsw")
    loaded = snapshot.load_snapshot(tmp_path, DIM, "r")
    assert loaded is not None
    for candidate in (index, Held(loaded[0], ids, rows)):
        _scores, found = candidate.search(queries, 10)
        assert not set(found.ravel().tolist()) & set(gone.tolist())
        assert recall(found, truth) >= 0.95
        for allowed in (allowed_many, allowed_few):
            _scores, found = candidate.search(queries[:5], 10, allowed_ids=allowed)
            assert set(found.ravel().tolist()) <= set(allowed.tolist()) - set(gone.tolist())
            assert (found >= 0).all()
    index.add(gone[:1], queries[:1])  # a removed id can come back
    _scores, found = index.search(queries[:1], 1)
    assert found[0, 0] == gone[0] and vectors.live_count(index.index) == COUNT - len(gone) + 1


def test_hnsw_graph_is_rebuilt_once_tombstones_pass_a_quarter(data: tuple) -> None:
    ids, rows, queries = data
    index = build("hnsw", ids, rows)
    assert vectors.remove(index.index, ids[:900]) == 900  # 22.5 %: tombstones
    assert index.index.ntotal == COUNT
    assert vectors.remove(index.index, ids[900:1100]) == 200  # 27.5 %: compacted
    assert index.index.ntotal == vectors.live_count(index.index) == COUNT - 1100
    _scores, found = index.search(queries, 10)
    assert recall(found, exact(rows[1100:], ids[1100:], queries, 10)) >= 0.95


@pytest.mark.parametrize("kind", index_choice.INDEX_TYPES)
def test_snapshot_round_trip(kind: str, data: tuple, tmp_path: Path) -> None:
    ids, rows, queries = data
    index = build(kind, ids, rows)
    before = index.search(queries, 10)
    snapshot.save_snapshot(index.index, tmp_path, generation=4, model_revision="r", index_type=kind)
    loaded = snapshot.load_snapshot(tmp_path, DIM, "r")
    assert loaded is not None
    again, manifest = loaded
    assert manifest.index_type == kind and manifest.generation == 4
    assert index_type_of(again) == kind
    after = Held(again, ids, rows).search(queries, 10)
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_allclose(before[0], after[0], rtol=1e-5)


def test_unknown_kind_and_untrained_ivf() -> None:
    with pytest.raises(ValueError, match="unknown index type"):
        vectors.new_index(DIM, "lsh")
    with pytest.raises(ValueError, match="sample"):
        vectors.new_index(DIM, "ivf-sq8")
    with pytest.raises(ValueError, match="sample"):
        vectors.new_index(DIM, "ivf-pq")


def test_ivf_pq_ranks_by_the_stored_vectors(data: tuple) -> None:
    """PQ codes alone rank the neighbours of a clustered set poorly; the re-rank by stored vectors gives
    brute force's order and exact scores, and without a source of stored vectors the search refuses."""
    ids, rows, queries = data
    index = build("ivf-pq", ids, rows)
    _codes, by_codes = search_index(index.index, queries, 10)
    scores, found = index.search(queries, 10)
    truth = exact(rows, ids, queries, 10)
    assert recall(found, truth) >= 0.95 > recall(by_codes, truth)
    by_id = dict(zip(ids.tolist(), rows, strict=True))
    np.testing.assert_allclose(scores[0], [by_id[i] @ queries[0] for i in found[0]], rtol=1e-5)
    gone = found[0, :3]  # removed from the database after the index was caught up: dropped, not ranked
    for image_id in gone.tolist():
        del index.rows[image_id]
    _scores, again = index.search(queries[:1], 10)
    assert not set(again[0].tolist()) & set(gone.tolist()) and (again[0] >= 0).all()
    with pytest.raises(ValueError, match="exact="):
        vectors.search(index.index, queries, 10)


def test_choose_index_type_by_size_and_budget() -> None:
    assert index_choice.choose_index_type(10_000) == "flat"
    assert index_choice.choose_index_type(300_000) == "hnsw"
    assert index_choice.choose_index_type(1_500_000) == "ivf-sq8"
    assert index_choice.choose_index_type(5_000_000) == "ivf-pq"
    assert index_choice.choose_index_type(1_000_000, memory_budget=500_000_000) == "ivf-pq"
    assert index_choice.bytes_per_vector("ivf-pq", 1152) <= 250
    assert index_choice.pq_codes(1152) == 384 and index_choice.pq_codes(64) == 16
    assert index_choice.pq_lists(10_000_000) == 4096
    assert index_choice.choose_index_type(300_000, memory_budget=500_000_000) == "ivf-sq8"
    assert index_choice.choose_index_type(1_000_000, memory_budget=1_500 * 1_000_000) == "ivf-sq8"
    assert index_choice.bytes_per_vector("ivf-sq8", 1152) <= 1_500
    assert index_choice.ivf_lists(10) == 1
    assert index_choice.ivf_lists(1_000_000) == 2048


def test_exact_subset_route_with_ids_beyond_the_bitmap(data: tuple) -> None:
    """Ids past the bitmap's range take the hash route and still give brute force's answer."""
    ids, rows, queries = data
    big = ids[:600] + faiss_calls.BITMAP_MAX_ID
    index = build("hnsw", big, rows[:600])
    allowed = big[::3]
    _scores, found = index.search(queries[:4], 5, allowed_ids=allowed)
    np.testing.assert_array_equal(found, exact(rows[:600:3], allowed, queries[:4], 5))
