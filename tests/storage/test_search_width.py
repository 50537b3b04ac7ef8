"""The search width of an approximate index (hnsw efSearch, ivf-sq8 probes) is measured when the index is
built: the smallest at which text-like queries reach recall@10 >= 0.95 against exact search, from the store's
cached text vectors when it has enough, else synthetic ones; it is saved in the snapshot's manifest, set
again when the store is reopened, and shown by ``info`` and ``check``. Real FAISS indexes and stores."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
from medsearch.storage import index_choice, queries, search_width, snapshot, vectors
from medsearch.storage.check import check_store
from medsearch.storage.models import TextEmbedding
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.vector_index import _width_queries
from medsearch.storage.writes import Batch, NewImage, write_batch

DIM = 64
RECORD = ModelRecord("test-model", "rev1", DIM, "prep/1")


def _unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _exact(queries: np.ndarray, data: np.ndarray) -> np.ndarray:
    return faiss.knn(queries, data, 10, metric=faiss.METRIC_INNER_PRODUCT)[1]


def test_a_too_narrow_default_is_widened_until_text_like_recall_passes() -> None:
    data = _unit_rows(10_000, 0)  # no clusters: an IVF query's neighbours lie in many lists
    index = vectors.new_index(DIM, "ivf-sq8", sample=data, count=len(data))
    vectors.add(index, np.arange(len(data)), data, replace=False)
    held_out = search_width.text_like(data, seed=5)  # not the queries it is tuned on
    truth = _exact(held_out, data)
    assert index.nprobe == index_choice.ivf_probes(index.nlist)
    assert search_width.recall(index.search(held_out, 10)[1], truth) < 0.95
    width = search_width.choose(index, search_width.text_like(data, seed=1))
    assert width is not None and width > index_choice.ivf_probes(index.nlist) and index.nprobe == width
    assert search_width.recall(index.search(held_out, 10)[1], truth) >= 0.95


def test_an_hnsw_graph_gets_the_smallest_breadth_that_passes() -> None:
    data = _unit_rows(5_000, 2)
    index = vectors.new_index(DIM, "hnsw")
    vectors.add(index, np.arange(len(data)), data, replace=False)
    held_out = search_width.text_like(data, seed=6)
    width = search_width.choose(index, search_width.text_like(data, seed=3))
    assert width is not None and width < index_choice.HNSW_EF_SEARCH
    assert search_width.recall(index.search(held_out, 10)[1], _exact(held_out, data)) >= 0.95
    narrower = search_width.HNSW_WIDTHS[search_width.HNSW_WIDTHS.index(width) - 1]
    search_width.set_width(index, narrower)  # the next width down did not pass on the tuning queries
    tuned_on = search_width.text_like(data, seed=3)
    assert search_width.recall(index.search(tuned_on, 10)[1], _exact(tuned_on, data)) < search_width.TARGET + \
        search_width.MARGIN


def test_an_ivf_sq8_width_allows_for_what_its_codes_lose() -> None:
    """ivf-sq8's exhaustive search is itself short of exact search (8-bit codes), so its width must pass the
    target by ``CODES_LOSS`` more than an hnsw graph's: here the old target (0.97) chose 16 lists of 256."""
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, DIM)).astype(np.float32)
    data = centres[rng.integers(0, 40, 20_000)] + 0.6 * rng.standard_normal((20_000, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = vectors.new_index(DIM, "ivf-sq8", sample=data, count=len(data))
    vectors.add(index, np.arange(len(data)), data, replace=False)
    wanted = search_width.TARGET + search_width.MARGIN + search_width.CODES_LOSS
    assert search_width.target(index) == wanted > search_width.target(vectors.new_index(DIM, "hnsw"))
    tuned_on = search_width.text_like(data, seed=1)
    width = search_width.choose(index, tuned_on)
    assert width is not None and index.nprobe == width
    exhaustive = search_width._exhaustive(index, tuned_on)
    assert search_width.recall(index.search(tuned_on, 10)[1], exhaustive) >= wanted
    search_width.set_width(index, width // 2)  # the next width down did not pass
    assert search_width.recall(index.search(tuned_on, 10)[1], exhaustive) < wanted
    search_width.set_width(index, width)
    held_out = search_width.text_like(data, seed=8)
    assert search_width.recall(index.search(held_out, 10)[1], _exact(held_out, data)) >= search_width.TARGET


def test_flat_and_tiny_indexes_are_left_alone() -> None:
    data = _unit_rows(100, 4)
    flat = vectors.new_index(DIM, "flat")
    vectors.add(flat, np.arange(len(data)), data)
    assert search_width.choose(flat, data) is None
    tiny = vectors.new_index(DIM, "hnsw")
    vectors.add(tiny, np.arange(5), data[:5])
    assert search_width.choose(tiny, data) is None


def _filled_store(directory: Path, count: int) -> Store:
    store = Store.open(directory, create=True, writable=True)
    store.bind_model(RECORD)
    rows = _unit_rows(count, 7)
    write_batch(store, Batch(images=[NewImage(f"/x/{i}.png", 0, 1, 1, f"hash{i}", rows[i], {"modality": "CR"})
                                     for i in range(count)]))
    return store


def test_the_width_is_saved_with_the_index_and_set_again_on_reopen(tmp_path: Path) -> None:
    with _filled_store(tmp_path, 4_000) as store:
        store.vectors.reindex("ivf-sq8")
        chosen, lists = store.vectors.index().nprobe, store.vectors.index().nlist
    manifest = json.loads((tmp_path / snapshot.MANIFEST_FILE).read_text())
    assert manifest["search_width"] == chosen and chosen != index_choice.ivf_probes(lists)
    with Store.open(tmp_path) as reader:
        assert reader.vectors.index().nprobe == chosen  # not reset to the default by tune()
        assert check_store(reader).facts["search_width"] == chosen
        assert queries.snapshot_width(reader) == chosen


def test_the_stores_cached_text_vectors_are_the_queries_when_there_are_enough(tmp_path: Path) -> None:
    with _filled_store(tmp_path, 200) as store:
        cached = _unit_rows(search_width.CACHED_MIN, 9)
        with store.read_session() as session:
            assert len(_width_queries(session, DIM)) == search_width.QUERIES  # none cached: synthetic
        with store.write_session() as session:
            session.add_all(TextEmbedding(model_key="m@rev1", text=f"t{i}", embedding=row.tobytes())
                            for i, row in enumerate(cached))
            session.add(TextEmbedding(model_key="other", text="wide", embedding=np.zeros(8, np.float32).tobytes()))
        with store.read_session() as session:
            found = _width_queries(session, DIM)
        assert sorted(map(bytes, found)) == sorted(map(bytes, cached))
