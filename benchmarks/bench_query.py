"""A whole text query through ``medsearch.api.Medsearch`` with a cached prompt (no model call): text cache,
filter resolved in SQL, vector search with an id selector, rows read back from SQLite. Synthetic
1152-d clustered vectors in a real store; the model is the MedSigLIP-448 shape with one layer (only its
calibration and identity are used, the prompt's vector comes from the cache).

    PYTHONPATH=. python benchmarks/bench_query.py --size 100000 --kinds flat hnsw ivf-sq8
    PYTHONPATH=. python benchmarks/bench_query.py --size 1000000 --kinds ivf-sq8

Prints p50/p95 latency per index type, unfiltered and with filters keeping 1 % and 10 %, and writes JSON
to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from medsearch.api import Medsearch
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.preprocess import PREPROCESSING_VERSION
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

from benchmarks.bench_search import synthetic
from benchmarks.medsiglip_shape import build_medsiglip_shape

RESULTS = Path(__file__).parent / "results"
FILTERS = {"none": (), "10%": ("modality = 'CR'",), "1%": ("modality = 'CT'",)}


def modality(row: int) -> str:
    """1 % CT, 10 % CR, the rest MR."""
    if row % 100 == 0:
        return "CT"
    return "CR" if row % 10 == 1 else "MR"


def fill(store: Store, count: int, chunk: int = 20_000) -> float:
    """Write ``count`` synthetic images; returns seconds."""
    started = time.perf_counter()
    for start in range(0, count, chunk):
        vectors = synthetic(min(chunk, count - start), seed=start)
        images = [NewImage(f"/bench/{start + i}.dcm", 0, 1, 1, f"h{start + i}", vectors[i],
                           {"modality": modality(start + i)}) for i in range(len(vectors))]
        write_batch(store, Batch(images=images))
    return time.perf_counter() - started


def timed(engine: Medsearch, where: tuple[str, ...], runs: int) -> dict[str, float]:
    engine.search("pleural effusion", k=10, where=where)  # warm: filter path, caches
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        results = engine.search("pleural effusion", k=10, where=where)
        latencies.append(1000 * (time.perf_counter() - started))
        assert len(results) == 10
    return {"p50_ms": float(np.percentile(latencies, 50)), "p95_ms": float(np.percentile(latencies, 95))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--kinds", nargs="+", default=["flat", "hnsw", "ivf-sq8"])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        embedder = load_embedder(str(build_medsiglip_shape(Path(folder) / "model", layers=1)), device="cpu")
        store = Store.open(Path(folder) / "store", create=True, writable=True)
        store.bind_model(ModelRecord(embedder.model_id, embedder.revision, embedder.dim, PREPROCESSING_VERSION))
        fill_s = fill(store, args.size)
        engine = Medsearch(store, embedder=embedder)
        engine.texts.vectors(["pleural effusion"])  # the prompt is cached from here on
        rows = []
        for kind in args.kinds:
            started = time.perf_counter()
            store.vectors.reindex(kind)
            build_s = time.perf_counter() - started
            for label, where in FILTERS.items():
                rows.append({"size": args.size, "index": kind, "filter": label, "build_s": round(build_s, 1),
                             **timed(engine, where, args.runs)})
                print(f"{args.size:>8} {kind:>8} {label:>5}  p50 {rows[-1]['p50_ms']:7.2f} ms  "
                      f"p95 {rows[-1]['p95_ms']:7.2f} ms  (index built in {build_s:.1f} s)", flush=True)
        store.close()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"query-{args.size}-{int(time.time())}.json"
    out.write_text(json.dumps({"fill_s": fill_s, "rows": rows}, indent=1))
    print(f"store filled in {fill_s:.0f} s; written {out}")


if __name__ == "__main__":
    main()
