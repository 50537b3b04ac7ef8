"""Torch threads for query-time text embedding: one text per call (what a search embeds), on a 2-layer
random-weight model of MedSigLIP-448's shape (``medsiglip_shape.py``; the text tower's cost per layer is the
real one), with 1, 2, ... threads, on the machine as it is and with ``--hogs`` busy-looping processes beside
it (``python -c 'while True: pass'``, stopped afterwards). Prints the median wall and CPU milliseconds per
query: under contention extra threads spin and cost CPU without gaining wall time.

    PYTHONPATH=. python benchmarks/bench_threads.py                 # 30 queries, threads 1 and 2, 0 and 2 hogs
    PYTHONPATH=. python benchmarks/bench_threads.py --queries 60 --threads 1 2 4 --layers 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_query_ms(embedder: Any, threads: int, queries: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms of this process) per one-text embedding with ``threads`` threads."""
    os.environ["MEDSEARCH_QUERY_THREADS"] = str(threads)  # read by every one-text call
    embedder.embed_texts(["warm up"])
    walls, cpus = [], []
    for n in range(queries):
        wall, cpu = time.perf_counter(), time.process_time()
        embedder.embed_texts([f"left pleural effusion number {n}"])
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--hogs", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--layers", type=int, default=2)
    options = parser.parse_args()
    from medsearch.indexer.model_loading import load_embedder

    from benchmarks.medsiglip_shape import build_medsiglip_shape

    with tempfile.TemporaryDirectory() as folder:
        embedder = load_embedder(str(build_medsiglip_shape(Path(folder) / "model", layers=options.layers)), "cpu",
                                 "float32")
        print(f"one-text embedding, MedSigLIP-448 shape with {options.layers} layers, {os.cpu_count()} cores, "
              f"{options.queries} queries each (median per query):")
        for hogs in options.hogs:
            started = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
            try:
                for threads in options.threads:
                    wall, cpu = per_query_ms(embedder, threads, options.queries)
                    print(f"  {hogs} hogs  {threads} threads  wall {wall:7.1f} ms  cpu {cpu:7.1f} ms")
            finally:
                for hog in started:
                    hog.kill()
                    hog.wait()


if __name__ == "__main__":
    main()
