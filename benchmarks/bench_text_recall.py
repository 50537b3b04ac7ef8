"""Cross-modal recall (issue 31): recall@10 of text-like beside image-like queries for each index kind at
the sizes ``auto`` gives it, over a sweep of its search width (hnsw efSearch, ivf-sq8 nprobe), so that
``storage/index_choice.py`` can pick widths where text-like queries reach recall@10 >= 0.95.

Data and queries as ``bench_scale.py`` makes them: clustered 1152-d unit vectors (one Gaussian centre per
1 000 vectors), ``image`` queries drawn from the same mixture, ``text`` queries pushed off the images by a
shared offset and noise (SigLIP text vectors lie far from every image: best cosine ~0.2). Indexes are built
by ``medsearch.storage.vectors.new_index`` as a store builds them; the exact answers by brute force.
The data is generated in chunks and not kept (the truth is a running top 10), so 2 M vectors fit in
about 3 GB (the ivf-sq8 codes).

    PYTHONPATH=. python benchmarks/bench_text_recall.py --kind hnsw --count 100000 --widths 128 256 512
    PYTHONPATH=. python benchmarks/bench_text_recall.py --kind ivf-sq8 --count 500000 --widths 32 64 128
    PYTHONPATH=. python benchmarks/bench_text_recall.py --kind hnsw --count 100000 --tuned  # the width a store picks

``--tuned`` measures the width a store's build picks (``medsearch.storage.search_width.choose``, on synthetic
text-like queries made from the first chunk of vectors, not the measured query sets) beside ``auto``'s fixed
default, and prints both sets' recall at each.

Prints one JSON line per (kind, count, width) and appends it to benchmarks/results/bench_text_recall.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_scale import DIM, RunningTop, draw, mixture, query_sets
from medsearch.storage import index_choice, search_width, vectors

RESULTS = Path(__file__).parent / "results"
CHUNK = 50_000


def chunks(count: int, seed: int):
    """(ids, rows) chunks of ``count`` mixture vectors, and the mixture's centres first."""
    means, rng = mixture(count, seed)
    yield means
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        yield np.arange(start, start + n, dtype=np.int64), draw(means, rng, n)


def build(kind: str, count: int, seed: int) -> tuple[object, dict[str, RunningTop], float, np.ndarray]:
    """The index of ``count`` vectors, the exact top 10 of each query set, the build seconds and the first
    chunk of vectors."""
    stream = chunks(count, seed)
    means = next(stream)
    sets = query_sets(means)
    tops = {name: RunningTop(queries) for name, queries in sets.items()}
    started = time.perf_counter()
    index, pending, first = None, [], None
    wanted = index_choice.train_size(count, kind) if kind != "hnsw" else 0
    for ids, rows in stream:
        first = rows if first is None else first
        for top in tops.values():
            top.see(ids, rows)
        if index is None:
            pending.append((ids, rows))
            if sum(len(i) for i, _r in pending) < min(wanted, count):
                continue
            sample = np.vstack([r for _i, r in pending])[:wanted] if wanted else None
            index = vectors.new_index(DIM, kind, sample, count=count)
            for held_ids, held in pending:
                index.add_with_ids(held, held_ids)
        else:
            index.add_with_ids(rows, ids)
    return index, tops, time.perf_counter() - started, first


def set_width(index: object, kind: str, width: int) -> None:
    import faiss

    if kind == "hnsw":
        faiss.downcast_index(index.index).hnsw.efSearch = width
    else:
        index.nprobe = width


def measure(index: object, tops: dict[str, RunningTop], k: int = 10) -> dict[str, float]:
    """recall@k and the mean ms per query of each query set (one query at a time)."""
    out: dict[str, float] = {}
    for name, top in tops.items():
        started = time.perf_counter()
        found = np.vstack([index.search(query[np.newaxis], k)[1] for query in top.queries])
        out[f"{name}_ms"] = round(1000 * (time.perf_counter() - started) / len(top.queries), 3)
        hits = sum(len(set(f) & set(t)) for f, t in zip(found, top.ids, strict=True))
        out[f"{name}_recall"] = round(hits / top.ids.size, 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["hnsw", "ivf-sq8"], required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--widths", type=int, nargs="*", default=[])
    parser.add_argument("--tuned", action="store_true", help="The width a store's build measures, beside the default.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    index, tops, seconds, first = build(args.kind, args.count, args.seed)
    lists = getattr(index, "nlist", None)
    RESULTS.mkdir(exist_ok=True)
    widths: list[tuple[int, str]] = [(width, "swept") for width in args.widths]
    if args.tuned:
        default = index_choice.HNSW_EF_SEARCH if args.kind == "hnsw" else index_choice.ivf_probes(lists)
        started = time.perf_counter()
        tuned = search_width.choose(index, search_width.text_like(first))
        print(json.dumps({"tuning_s": round(time.perf_counter() - started, 1)}), flush=True)
        widths += [(default, "default"), (tuned, "tuned")]
    for width, chosen in widths:
        set_width(index, args.kind, width)
        row = {"kind": args.kind, "count": args.count, "width": width, "chosen": chosen, "lists": lists,
               "build_s": round(seconds, 1), **measure(index, tops), "cpus": os.cpu_count()}
        print(json.dumps(row), flush=True)
        with (RESULTS / "bench_text_recall.jsonl").open("a") as out:
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
