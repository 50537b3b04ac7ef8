"""medsearch's vector indexes beside their peers, on the same vectors and queries: medsearch's ``flat``,
``hnsw`` and ``ivf-sq8`` (through ``medsearch.storage.vectors``, as ``bench_search.py`` uses them) against
FAISS used directly (``IndexFlatIP``, ``IndexHNSWFlat``, ``IndexIVFPQFastScan`` + ``IndexRefineFlat``),
hnswlib and usearch with the same HNSW parameters, for image-like and text-like queries (``bench_scale.py``'s
query sets), without and with a filter keeping 1 % of the ids. Prints p50 and p95 ms (one query at a time,
one thread), recall@10 against exact search, build seconds and the index's bytes per vector (what it holds
in memory; its file is the same size). ``ivf-pq``'s re-rank reads stored vectors from the store: its
figures are ``bench_scale.py``'s. Peers that are not installed (``pip install "medsearch[bench]"``) are
skipped with a line saying so; LanceDB and Qdrant are not measured yet.

    PYTHONPATH=. python benchmarks/bench_peers.py                     # 20 k x 1152, 100 queries per set
    PYTHONPATH=. python benchmarks/bench_peers.py --count 100000      # the issue's size
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medsearch.storage import index_choice  # noqa: E402

from benchmarks.bench_scale import DIM, draw, mixture, query_sets  # noqa: E402

K = 10
Search = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
"""(one query, allowed ids or None) -> the ids found."""


def medsearch_index(kind: str, data: np.ndarray) -> tuple[Search | None, int]:
    from medsearch.storage import vectors

    index = vectors.new_index(DIM, kind, sample=data[: index_choice.PQ_TRAIN_MAX], count=len(data))
    vectors.add(index, np.arange(len(data), dtype=np.int64), data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.faiss"
        _faiss_write(index, path)
        size = path.stat().st_size
    return lambda query, allowed: vectors.search(index, query, K, allowed)[1][0], size


def _faiss_write(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def faiss_index(kind: str, data: np.ndarray) -> tuple[Search | None, int]:
    import faiss

    if kind == "IndexFlatIP":
        index = faiss.IndexFlatIP(DIM)
    elif kind == "IndexHNSWFlat":
        index = faiss.IndexHNSWFlat(DIM, index_choice.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = index_choice.HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = index_choice.HNSW_EF_SEARCH
    else:
        lists = min(index_choice.pq_lists(len(data)), max(1, len(data) // index_choice.IVF_TRAIN_PER_LIST))
        ivf = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(DIM), DIM, lists, index_choice.pq_codes(DIM), 4,
                                       faiss.METRIC_INNER_PRODUCT)
        ivf.nprobe = index_choice.pq_probes(lists)
        index = faiss.IndexRefineFlat(ivf)
        index.k_factor = 50  # 500 re-ranked for k = 10, as medsearch's ivf-pq
        index.train(data[: index_choice.PQ_TRAIN_MAX])
    index.add(data)
    size = len(faiss.serialize_index(index))

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=index_choice.HNSW_EF_SEARCH)
                      if kind == "IndexHNSWFlat" else faiss.SearchParameters(sel=selector))
            if kind.startswith("IndexIVFPQ"):
                params = faiss.IndexRefineSearchParameters(k_factor=50, base_index_params=faiss.SearchParametersIVF(
                    sel=selector, nprobe=index_choice.pq_probes(lists)))
        return index.search(query[np.newaxis], K, params=params)[1][0]

    return search, size


def hnswlib_index(data: np.ndarray) -> tuple[Search | None, int]:
    try:
        import hnswlib
    except ModuleNotFoundError:
        return None, 0
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=len(data), M=index_choice.HNSW_M, ef_construction=index_choice.HNSW_EF_CONSTRUCTION)
    index.set_num_threads(1)
    index.add_items(data, np.arange(len(data)))
    index.set_ef(index_choice.HNSW_EF_SEARCH)
    with tempfile.TemporaryDirectory() as folder:
        index.save_index(str(Path(folder) / "hnswlib.bin"))
        size = (Path(folder) / "hnswlib.bin").stat().st_size

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        keep = None if allowed is None else set(allowed.tolist()).__contains__
        return index.knn_query(query, k=K, filter=keep)[0][0]

    return search, size


def usearch_index(data: np.ndarray) -> tuple[Search | None, int]:
    try:
        from usearch.index import Index
    except ModuleNotFoundError:
        return None, 0
    index = Index(ndim=DIM, metric="ip", dtype="f32", connectivity=index_choice.HNSW_M // 2,
                  expansion_add=index_choice.HNSW_EF_CONSTRUCTION, expansion_search=index_choice.HNSW_EF_SEARCH)
    index.add(np.arange(len(data)), data, threads=1)
    size = len(index.save())

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        if allowed is not None:
            return np.array([])  # no filtered search in its Python API: not measured
        return np.asarray(index.search(query, K, threads=1).keys)

    return search, size


def measure(search: Search, queries: np.ndarray, truth: np.ndarray, allowed: np.ndarray | None) -> str:
    """``p50 / p95 ms, recall@10`` of ``search`` over ``queries``."""
    latencies, hits = [], 0
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        found = search(query, allowed)
        latencies.append(1000 * (time.perf_counter() - started))
        hits += len(set(np.asarray(found).tolist()) & set(expected.tolist()))
    if hits == 0 and allowed is not None:
        return "            -"
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return f"{statistics.median(latencies):5.2f}/{p95:5.2f} {hits / truth.size:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    options = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)
    means, rng = mixture(options.count, seed=7)
    data = draw(means, rng, options.count).astype(np.float32)
    sets = query_sets(means)
    allowed = np.sort(np.random.default_rng(3).choice(options.count, options.count // 100, replace=False))
    truth: dict[tuple[str, bool], np.ndarray] = {}
    for name, queries in sets.items():
        truth[(name, False)] = faiss.knn(queries, data, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
        truth[(name, True)] = allowed[faiss.knn(queries, data[allowed], K, metric=faiss.METRIC_INNER_PRODUCT)[1]]
    contenders: list[tuple[str, Callable[[], tuple[Search | None, int]]]] = [
        *[(f"medsearch {kind}", lambda kind=kind: medsearch_index(kind, data)) for kind in ("flat", "hnsw", "ivf-sq8")],
        *[(f"faiss {kind}", lambda kind=kind: faiss_index(kind, data))
          for kind in ("IndexFlatIP", "IndexHNSWFlat", "IndexIVFPQFastScan+Refine")],
        ("hnswlib", lambda: hnswlib_index(data)), ("usearch", lambda: usearch_index(data)),
    ]
    print(f"{options.count} x {DIM} clustered unit vectors, 100 queries per set, one thread, {os.cpu_count()} cores;"
          " each cell p50/p95 ms and recall@10:")
    print(f"{'index':<34}{'build s':>8}{'B/vec':>7}  {'image':>18}  {'image 1%':>18}  {'text':>18}  {'text 1%':>18}")
    for label, build in contenders:
        started = time.perf_counter()
        search, size = build()
        built = time.perf_counter() - started
        if search is None:
            print(f"{label:<34} not installed (pip install \"medsearch[bench]\")")
            continue
        cells = [measure(search, sets[name], truth[(name, filtered)], allowed if filtered else None)
                 for name in sets for filtered in (False, True)]
        print(f"{label:<34}{built:8.1f}{size / options.count:7.0f}  " + "  ".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
