"""medsearch's vector indexes beside their peers, on the same vectors and queries: medsearch's ``flat``,
``hnsw`` and ``ivf-sq8`` (through ``medsearch.storage.vectors``, as ``bench_search.py`` uses them) against
FAISS used directly (``IndexFlatIP``, ``IndexHNSWFlat``, ``IndexIVFPQFastScan`` + ``IndexRefineFlat``),
hnswlib and usearch with the same HNSW parameters, and two embedded vector databases: LanceDB (exact, and
its ``IVF_HNSW_SQ`` index with the same M / efConstruction / efSearch) and Qdrant's local mode
(which searches exactly in Python; see ``qdrant_index`` for its disk figure), for image-like and text-like queries
(``bench_scale.py``'s query sets), without and with a filter keeping 1 % of the ids. Prints p50 and p95 ms
(one query at a time, one thread where the library lets it choose), recall@10 against exact search, build
seconds, serving memory per vector (the growth of the process's resident memory from before the build to
after the queries; each contender runs in a fresh process) and disk per vector (the saved index file, or
the database's folder). medsearch's ``ivf-pq`` re-ranks with vectors kept by a store, so it is measured
as a store serves it (``medsearch_store``; at millions, ``bench_scale.py``). Peers that are not installed
(``pip install "medsearch[bench]"``) are skipped with a line saying so.

    PYTHONPATH=. python benchmarks/bench_peers.py                     # 20 k x 1152, 100 queries per set
    PYTHONPATH=. python benchmarks/bench_peers.py --count 100000      # the issue's size
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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
QDRANT_DISK_SAMPLE = 1000
Search = Callable[[np.ndarray, np.ndarray | None], np.ndarray]
"""(one query, allowed ids or None) -> the ids found."""


def medsearch_index(kind: str, data: np.ndarray) -> tuple[Search | None, int]:
    """(search, bytes on disk) of a medsearch index of ``kind`` over ``data``; so are the others'."""
    from medsearch.storage import vectors

    index = vectors.new_index(DIM, kind, sample=data[: index_choice.PQ_TRAIN_MAX], count=len(data))
    vectors.add(index, np.arange(len(data), dtype=np.int64), data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.faiss"
        _faiss_write(index, path)
        size = path.stat().st_size
    return lambda query, allowed: vectors.search(index, query, K, allowed)[1][0], size


def medsearch_store(data: np.ndarray) -> tuple[Search | None, int]:
    """medsearch ``ivf-pq`` as a store serves it: ``data`` written to a store (``bench_scale.py``'s bulk rows,
    ids 1.. in order), ``reindex("ivf-pq")`` (training, codes and the vector file), then opened read-only
    with its vector file read into the page cache, as ``medsearch serve`` does. Its disk is the whole store's
    folder: the database (rows with their metadata and stored vectors), the index and the vector file."""
    from medsearch.storage.store import ModelRecord, Store

    from benchmarks.bench_scale import bulk_insert, rows_for

    folder = _folder("bench-store-")
    rng = np.random.default_rng(5)
    with Store.open(folder, create=True, writable=True) as store:
        store.bind_model(ModelRecord("synthetic", "peers", DIM, "3"))
        for start in range(0, len(data), 50_000):
            bulk_insert(store, rows_for(start, data[start:start + 50_000], rng))
        store.vectors.reindex("ivf-pq")
    served = Store.open(folder)
    atexit.register(served.close)
    served.vectors.index()
    served.vectors.warm_vectors(threading.Event())

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        ids = served.vectors.search(query, K, None if allowed is None else allowed + 1)[1][0]
        return ids[ids > 0] - 1

    return search, _disk(folder)


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


def _folder(prefix: str) -> Path:
    """A temporary folder, removed when this process exits."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _disk(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def lancedb_index(data: np.ndarray, indexed: bool) -> tuple[Search | None, int]:
    """LanceDB on a folder: exact search, or its ``IVF_HNSW_SQ`` index (one partition: a plain HNSW over
    8-bit codes) with medsearch's HNSW parameters; a filter is a prefiltered ``id IN (...)``."""
    try:
        import lancedb
        import pyarrow as pa
    except ModuleNotFoundError:
        return None, 0
    folder = _folder("bench-lancedb-")
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(data.ravel()), DIM)
    table = lancedb.connect(folder).create_table("v", pa.table({"id": pa.array(np.arange(len(data))),
                                                                 "vector": vectors}))
    if indexed:
        from lancedb.index import IvfHnswSq

        config = IvfHnswSq(distance_type="dot", num_partitions=1, m=index_choice.HNSW_M,
                           ef_construction=index_choice.HNSW_EF_CONSTRUCTION)
        table.create_index("vector", config=config)

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        asked = table.search(query).distance_type("dot").limit(K).select(["id", "_distance"])
        if indexed:
            asked = asked.ef(index_choice.HNSW_EF_SEARCH)
        if allowed is not None:
            asked = asked.where(f"id IN ({','.join(map(str, allowed.tolist()))})", prefilter=True)
        return np.asarray(asked.to_arrow()["id"])

    return search, _disk(folder)


def qdrant_index(data: np.ndarray) -> tuple[Search | None, int]:
    """Qdrant's local mode (exact search in numpy); a filter is a ``HasIdCondition``. Searched in
    ``:memory:``: with ``path=`` it writes each point as its own SQLite row (~12 ms a point here, 4 minutes
    for 20 k), so its disk per vector is that of ``QDRANT_DISK_SAMPLE`` points written with ``path=``."""
    try:
        from qdrant_client import QdrantClient, models
    except ModuleNotFoundError:
        return None, 0
    folder = _folder("bench-qdrant-")
    on_disk = QdrantClient(path=str(folder))
    on_disk.create_collection("v", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    sample = data[:QDRANT_DISK_SAMPLE]
    on_disk.upload_collection("v", vectors=sample, ids=range(len(sample)), batch_size=1024)
    on_disk.close()
    size = _disk(folder) * len(data) // len(sample)
    client = QdrantClient(location=":memory:")
    client.create_collection("v", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    client.upload_collection("v", vectors=data, ids=range(len(data)), batch_size=1024)

    def search(query: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
        only = None if allowed is None else models.Filter(must=[models.HasIdCondition(has_id=allowed.tolist())])
        return np.array([point.id for point in client.query_points("v", query=query, limit=K,
                                                                    query_filter=only).points])

    return search, size


def resident_bytes() -> int:
    """This process's resident memory (Linux ``/proc``; 0 elsewhere)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


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


LIBRARIES = {"medsearch": ("medsearch.storage.store", "medsearch.storage.vectors"), "hnswlib": ("hnswlib",),
             "usearch": ("usearch.index",), "lancedb": ("lancedb", "pyarrow"), "qdrant": ("qdrant_client",)}
"""The modules each peer imports, imported before the memory baseline is read (by the label's first word)."""


def contenders(data: np.ndarray) -> list[tuple[str, Callable[[], tuple[Search | None, int]]]]:
    """(label, build) of every index measured, in the order printed."""
    return [
        *[(f"medsearch {kind}", lambda kind=kind: medsearch_index(kind, data)) for kind in ("flat", "hnsw", "ivf-sq8")],
        ("medsearch ivf-pq (a store)", lambda: medsearch_store(data)),
        *[(f"faiss {kind}", lambda kind=kind: faiss_index(kind, data))
          for kind in ("IndexFlatIP", "IndexHNSWFlat", "IndexIVFPQFastScan+Refine")],
        ("hnswlib", lambda: hnswlib_index(data)), ("usearch", lambda: usearch_index(data)),
        ("lancedb, exact", lambda: lancedb_index(data, False)),
        ("lancedb IVF_HNSW_SQ", lambda: lancedb_index(data, True)),
        ("qdrant local mode (exact)", lambda: qdrant_index(data)),
    ]


def one_row(count: int, which: int, asked: int) -> None:
    """Build contender ``which`` over ``count`` vectors in this process and print its row (the first
    ``asked`` queries of each set)."""
    import faiss

    faiss.omp_set_num_threads(1)
    means, rng = mixture(count, seed=7)
    data = draw(means, rng, count).astype(np.float32)
    sets = {name: queries[:asked] for name, queries in query_sets(means).items()}
    allowed = np.sort(np.random.default_rng(3).choice(count, count // 100, replace=False))
    truth: dict[tuple[str, bool], np.ndarray] = {}
    for name, queries in sets.items():
        truth[(name, False)] = faiss.knn(queries, data, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
        truth[(name, True)] = allowed[faiss.knn(queries, data[allowed], K, metric=faiss.METRIC_INNER_PRODUCT)[1]]
    label, build = contenders(data)[which]
    for module in LIBRARIES.get(label.split()[0].rstrip(","), ()):
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(module)
    before = resident_bytes()
    started = time.perf_counter()
    search, size = build()
    built = time.perf_counter() - started
    if search is None:
        print(f"{label:<30} not installed (pip install \"medsearch[bench]\")", flush=True)
        return
    cells = [measure(search, sets[name], truth[(name, filtered)], allowed if filtered else None)
             for name in sets for filtered in (False, True)]
    memory = (resident_bytes() - before) / count
    print(f"{label:<30}{built:8.1f}{memory:7.0f}{size / count:7.0f}  " + "  ".join(f"{c:>18}" for c in cells),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100, help="Queries per set (at most 100).")
    parser.add_argument("--contenders", help="Only these contenders, by number (0-based, in the printed order): 9,11")
    parser.add_argument("--only", type=int, help="Measure this contender (its number) here, and print its row.")
    options = parser.parse_args()
    if options.only is not None:
        one_row(options.count, options.only, options.queries)
        return
    print(f"{options.count} x {DIM} clustered unit vectors, {options.queries} queries per set, one thread, "
          f"{os.cpu_count()} cores; each cell p50/p95 ms and recall@10; memory and disk in bytes per vector:")
    print(f"{'index':<30}{'build s':>8}{'mem':>7}{'disk':>7}  {'image':>18}  {'image 1%':>18}  {'text':>18}  "
          f"{'text 1%':>18}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LANCE_CPU_THREADS": "1", "LANCE_LOG": "error"}
    every = range(len(contenders(np.zeros((0, DIM), dtype=np.float32))))
    chosen = every if options.contenders is None else [int(which) for which in options.contenders.split(",")]
    for which in chosen:
        subprocess.run([sys.executable, __file__, "--count", str(options.count), "--queries", str(options.queries),
                        "--only", str(which)], env=env, check=False)


if __name__ == "__main__":
    main()
