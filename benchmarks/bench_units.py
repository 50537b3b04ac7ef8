"""Series and study ranking (issue 17): which unit score is best, and what units cost.

Quality, on synthetic volumes (tests/volumes.py: real multi-file DICOM series of drawn slices, one class
of tests/tiny_siglip.py on ``--marked`` of ``--slices`` slices, plain backgrounds elsewhere; blank
series without any class), embedded with the tiny trained SigLIP:
- text: per class, precision@k (k = series of that class) of its caption at unit series, per method
  (mean vector, best slice ``max``, mean of the 3 best slices ``top3``);
- similar series: per series with a class, precision@k (k = the other series of its class), per method
  (``mean``, ``max``, ``top3`` of the query series' mean vector, and ``late`` interaction).

Cost, on a store written through ``medsearch.storage.writes.write_batch`` with clustered random 1152-d vectors
(``--series`` series of ``--per-series`` slices, no model): seconds to index with and without the unit
refresh, to build the image index and the unit index from the database, and median ms per query
(image search k=10 vs unit search k=10 per method).

    PYTHONPATH=. python benchmarks/bench_units.py [--model-dir DIR] [--series 100 --per-series 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.api import Medsearch
from medsearch.indexer.model_loading import load_embedder
from medsearch.indexer.pipeline import IndexSettings
from medsearch.query import units as ranking
from medsearch.query.ranking import iter_ranked, take
from medsearch.query.spec import SIMILAR_METHODS, TEXT_METHODS
from medsearch.storage import units
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

from tests.tiny_siglip import CLASS_CAPTIONS, train_tiny_siglip
from tests.volumes import write_volume_set


def quality(model: Path, scratch: Path, slices: int, marked: int, per_class: int) -> dict[str, Any]:
    specs = write_volume_set(scratch / "dicom", per_class=per_class, blanks=4, slices=slices, marked=marked)
    truth = {s.series_uid: s.label for s in specs}
    count = Counter(s.label for s in specs if s.label)
    embedder = load_embedder(str(model), device="cpu")
    with Medsearch.open(scratch / "store", create=True, writable=True, embedder=embedder) as ms:
        ms.index([scratch / "dicom"], IndexSettings(batch_size=16, workers=0))
        text = {m: statistics.mean(
            sum(truth[r.key] == name for r in ms.search(CLASS_CAPTIONS[name][0], n, unit="series",
                                                        unit_method=m)) / n
            for name, n in count.items()) for m in TEXT_METHODS}
        similar = {m: statistics.mean(
            sum(truth[r.key] == s.label for r in ms.similar(s.series_uid, count[s.label] - 1, unit="series",
                                                            unit_method=m)) / (count[s.label] - 1)
            for s in specs if s.label) for m in SIMILAR_METHODS}
    return {"slices": slices, "marked": marked, "series": len(specs), "text_p@k": text, "similar_p@k": similar}


def clustered(rng: np.random.Generator, centre: np.ndarray, n: int) -> np.ndarray:
    rows = centre + 0.5 * rng.normal(size=(n, centre.size)).astype(np.float32) / np.sqrt(centre.size)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def write_store(directory: Path, series: int, per_series: int, dim: int) -> tuple[Store, float]:
    """A store of clustered random vectors written in batches of 32; (the store, seconds)."""
    rng = np.random.default_rng(0)
    store = Store.open(directory, create=True, writable=True)
    store.bind_model(ModelRecord("synthetic", "0", dim, "3"))
    started = time.perf_counter()
    for s in range(series):
        centre = rng.normal(size=dim).astype(np.float32)
        vectors = clustered(rng, centre / np.linalg.norm(centre), per_series)
        for start in range(0, per_series, 32):  # batches of 32, as the indexer on a CPU with 2 batches queued
            batch = Batch(images=[NewImage(f"/s{s}/{i}.dcm", 0, 1, 1, "h", vectors[i], {
                "series_instance_uid": f"1.2.{s}", "study_instance_uid": f"1.3.{s // 4}", "patient_key": f"p{s // 8}"})
                for i in range(start, min(per_series, start + 32))])
            write_batch(store, batch)
    return store, time.perf_counter() - started


def cost(scratch: Path, series: int, per_series: int, dim: int = 1152) -> dict[str, Any]:
    import medsearch.storage.writes

    kept = medsearch.storage.writes.refresh
    medsearch.storage.writes.refresh = lambda *_args: None  # the baseline: images only, no unit refresh
    try:
        plain, without = write_store(scratch / "plain", series, per_series, dim)
        plain.close()
    finally:
        medsearch.storage.writes.refresh = kept
    store, total = write_store(scratch / "cost", series, per_series, dim)
    rng = np.random.default_rng(1)
    keys = {(kind, f"1.{2 if kind == 'series' else 3}.{s if kind == 'series' else s // 4}")
            for kind in units.KINDS for s in range(series)}
    with store.write_session() as session:
        t0 = time.perf_counter()
        units.refresh(session, keys, store.generation())
        refresh_s = time.perf_counter() - t0  # the same values again: every unit recomputed once
    t0 = time.perf_counter()
    store.vectors.rebuild()
    image_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.unit_vectors.clear()
    store.unit_vectors.index("series")
    unit_build = time.perf_counter() - t0
    queries = [clustered(rng, rng.normal(size=dim).astype(np.float32) / np.sqrt(dim), 1)[0] for _ in range(20)]
    timings = {"image": _median_ms(lambda q: take(iter_ranked(store, q), 10), queries)}
    for method in TEXT_METHODS:
        timings[f"series {method}"] = _median_ms(lambda q, m=method: ranking.rank_units(store, q, "series", m, 10),
                                                 queries)
    slices = np.vstack([v for _i, v in units.members(store, "series", ["1.2.0"])["1.2.0"]])
    timings["series late (100-slice query)"] = _median_ms(
        lambda q: ranking.late_interaction(store, slices, "series", 10), queries[:5])
    timings["image similar"] = _median_ms(lambda q: take(iter_ranked(store, slices[0]), 10), queries[:5])
    store.close()
    return {"images": series * per_series, "series": series, "write_s_without_units": round(without, 2),
            "write_s_with_units": round(total, 2),
            "unit_refresh_all_s": round(refresh_s, 3), "image_index_build_s": round(image_build, 3),
            "series_index_build_s": round(unit_build, 3), "query_ms_median": timings}


def _median_ms(run: Any, queries: list[np.ndarray]) -> float:
    times = []
    for query in queries:
        t0 = time.perf_counter()
        run(query)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, help="reuse a tiny trained model (train_tiny_siglip)")
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--per-series", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        model = args.model_dir or train_tiny_siglip(scratch / "tiny", seed=0)
        figures = {"quality": [quality(model, scratch / f"q{slices}-{marked}", slices, marked, 3)
                               for slices, marked in ((12, 2), (12, 4), (24, 1))],
                   "cost": cost(scratch, args.series, args.per_series)}
    print(json.dumps(figures, indent=1))
    out = Path("benchmarks/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_units.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
