"""Vector search on synthetic 1152-d unit vectors: latency, recall@10 against exact search, build time and
bytes per vector, for each index kind, unfiltered and with filters keeping 1 % and 10 % of the images; then
the cost of removals (a batch of 100 ids, search after 10 % removed, the next 20 %).

    python benchmarks/bench_search.py                      # 10 k and 100 k, clustered, plus a uniform row
    python benchmarks/bench_search.py --sizes 1000000 --kinds ivf-sq8

Prints a table and writes JSON to benchmarks/results/. Vector search alone (no text model, no database).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from medsearch.storage import snapshot, vectors

DIM = 1152
RESULTS = Path(__file__).parent / "results"


def synthetic(count: int, seed: int, uniform: bool = False, centres: int = 1000) -> np.ndarray:
    """(count, DIM) float32 unit rows: a mixture of Gaussians (or uniform on the sphere)."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, DIM), dtype=np.float32)
    means = rng.standard_normal((centres, DIM), dtype=np.float32)
    for start in range(0, count, 50_000):
        n = min(50_000, count - start)
        noise = rng.standard_normal((n, DIM), dtype=np.float32)
        block = noise if uniform else means[rng.integers(0, centres, n)] + 0.8 * noise
        out[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top(data: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
    import faiss

    subset = data if rows is None else data[rows]
    _d, positions = faiss.knn(queries, subset, k, metric=faiss.METRIC_INNER_PRODUCT)
    return positions if rows is None else rows[positions]


def timed_queries(index: object, queries: np.ndarray, k: int, allowed: np.ndarray | None
                  ) -> tuple[list, np.ndarray]:
    """Per-query latencies (ms) and the (q, k) ids found, one query at a time."""
    latencies, found = [], []
    for query in queries:
        started = time.perf_counter()
        _scores, ids = vectors.search(index, query, k, allowed)
        latencies.append(1000 * (time.perf_counter() - started))
        found.append(ids[0])
    return latencies, np.array(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def measure(kind: str, data: np.ndarray, queries: np.ndarray, k: int, label: str) -> list[dict]:
    """Rows of figures for one index kind on one data set: unfiltered, 10 % and 1 % filters."""
    from medsearch.storage import index_choice

    ids = np.arange(len(data), dtype=np.int64)
    started = time.perf_counter()
    picked = np.random.default_rng(0).choice(len(data), index_choice.train_size(len(data)), replace=False)
    sample = data[picked]
    index = vectors.new_index(DIM, kind, sample=sample if kind == "ivf-sq8" else None, count=len(data))
    for start in range(0, len(data), 100_000):
        index.add_with_ids(data[start : start + 100_000], ids[start : start + 100_000])
    build = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        snapshot.save_snapshot(index, Path(folder), 0, "bench", kind)
        disk = os.path.getsize(snapshot.snapshot_file(Path(folder)) or folder)
    rows = []
    for keep in (1.0, 0.1, 0.01):
        allowed = None if keep == 1.0 else np.sort(np.random.default_rng(1).choice(
            len(data), int(keep * len(data)), replace=False)).astype(np.int64)
        truth = exact_top(data, queries, k, allowed)
        vectors.search(index, queries[0], k, allowed)  # warm-up
        latencies, found = timed_queries(index, queries, k, allowed)
        rows.append({"data": label, "n": len(data), "kind": kind, "filter": keep,
                     "p50_ms": float(np.percentile(latencies, 50)),
                     "p95_ms": float(np.percentile(latencies, 95)),
                     "recall@10": recall(found, truth), "build_s": build,
                     "disk_B_per_vec": disk / len(data), "mem_B_per_vec": disk / len(data) + 16})
    rows.append(removals(kind, index, data, queries, k, label))
    return rows


def removals(kind: str, index: object, data: np.ndarray, queries: np.ndarray, k: int, label: str) -> dict:
    """Removal costs: one batch of 100 ids, then 10 % of the vectors in batches of 1000, searched after
    (p50 and recall against exact search over the survivors), then up to 30 % (HNSW compacts at 25 %)."""
    order = np.random.default_rng(2).permutation(len(data)).astype(np.int64)
    started = time.perf_counter()
    vectors.remove(index, order[:100])
    batch_ms = 1000 * (time.perf_counter() - started)
    tenth = len(data) // 10
    for start in range(100, tenth, 1000):
        vectors.remove(index, order[start : min(start + 1000, tenth)])
    survivors = np.sort(order[tenth:])
    truth = exact_top(data, queries, k, survivors)
    latencies, found = timed_queries(index, queries, k, None)
    started = time.perf_counter()
    for start in range(tenth, 3 * tenth, 1000):
        vectors.remove(index, order[start : min(start + 1000, 3 * tenth)])
    return {"data": label, "n": len(data), "kind": kind, "filter": "removals", "remove_100_ms": batch_ms,
            "p50_ms_after_10pct": float(np.percentile(latencies, 50)), "recall@10_after_10pct": recall(found, truth),
            "remove_next_20pct_s": time.perf_counter() - started, "live": vectors.live_count(index)}


def show(row: dict) -> None:
    head = f"{row['data']:9} {row['n']:>8} {row['kind']:7}"
    if row["filter"] == "removals":
        print(f"{head} removals: 100 ids {row['remove_100_ms']:8.1f} ms; after 10 % removed p50 "
              f"{row['p50_ms_after_10pct']:6.2f} ms recall@10 {row['recall@10_after_10pct']:.3f}; "
              f"the next 20 % {row['remove_next_20pct_s']:6.1f} s", flush=True)
        return
    print(f"{head} filter {row['filter']:>4}: p50 {row['p50_ms']:7.2f} ms  p95 {row['p95_ms']:7.2f} ms  "
          f"recall@10 {row['recall@10']:.3f}  build {row['build_s']:6.1f} s  {row['mem_B_per_vec']:6.0f} B/vec mem  "
          f"{row['disk_B_per_vec']:6.0f} B/vec disk", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf-sq8"], choices=["flat", "hnsw", "ivf-sq8"],
                        help="ivf-pq re-ranks from a store: benchmarks/bench_scale.py measures it")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--uniform", type=int, default=10_000,
                        help="size of the uniform worst-case row (0: none)")
    args = parser.parse_args()
    k, rows = 10, []
    plan = [(n, False) for n in args.sizes] + ([(args.uniform, True)] if args.uniform else [])
    for n, uniform in plan:
        label = "uniform" if uniform else "clustered"
        generated = synthetic(n + args.queries, seed=n, uniform=uniform)
        data, queries = generated[:n], generated[n:]
        for kind in args.kinds:
            for row in measure(kind, data, queries, k, label):
                rows.append(row)
                show(row)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"search-{time.strftime('%Y%m%d-%H%M%S')}.json"
    facts = {"dim": DIM, "queries": args.queries, "threads": os.cpu_count(), "rows": rows}
    out.write_text(json.dumps(facts, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
