"""What the reader/writer rule inside the vector index costs: one query at a time through
``store.vectors.search`` (the shared lock and the generation check included) against FAISS called
directly on the same index, and searches per second with 1 and 2 threads sharing one store (searches
share the lock, and FAISS releases the GIL while it searches).

    PYTHONPATH=. python benchmarks/bench_vector_index.py                 # 20 k flat vectors of 1152-d
    PYTHONPATH=. python benchmarks/bench_vector_index.py --count 100000 --seconds 10

Prints the figures and writes JSON to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from medsearch.storage import vectors
from medsearch.storage.model_record import ModelRecord
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, NewImage, write_batch

DIM = 1152
RESULTS = Path(__file__).parent / "results"


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM), dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def fill(directory: Path, count: int) -> None:
    with Store.open(directory, create=True, writable=True) as store:
        store.bind_model(ModelRecord("bench", "rev", DIM, "prep"))
        for start in range(0, count, 5000):
            rows = unit_rows(min(5000, count - start), start)
            write_batch(store, Batch(images=[NewImage(f"/b/{start + i}.png", 0, 1, 1, f"h{start + i}", row)
                                             for i, row in enumerate(rows)]))
        store.vectors.save_snapshot()


def p50_ms(search: object, queries: np.ndarray) -> float:
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)  # type: ignore[operator]
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


def per_second(store: Store, queries: np.ndarray, threads: int, seconds: float) -> float:
    """Searches per second of ``threads`` threads sharing ``store`` for ``seconds``."""
    counts, stop = [0] * threads, threading.Event()

    def run(slot: int) -> None:
        while not stop.is_set():
            store.vectors.search(queries[counts[slot] % len(queries)], 10)
            counts[slot] += 1

    workers = [threading.Thread(target=run, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    queries = unit_rows(200, 99)
    with tempfile.TemporaryDirectory() as folder:
        fill(Path(folder), args.count)
        with Store.open(folder) as store:
            index = store.vectors.index()
            direct = p50_ms(lambda q: vectors.search(index, q, 10), queries)
            through = p50_ms(lambda q: store.vectors.search(q, 10), queries)
            out = {"count": args.count, "direct_p50_ms": round(direct, 3), "vector_index_p50_ms": round(through, 3),
                   "per_second_1_thread": round(per_second(store, queries, 1, args.seconds)),
                   "per_second_2_threads": round(per_second(store, queries, 2, args.seconds))}
    print(json.dumps(out, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"vector_index_{args.count}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
