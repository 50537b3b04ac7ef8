"""``GET /api/facets``' query (``medsearch.storage.facets``) on a store of synthetic rows: typed columns, a split
field (2 values), a grade field (5 values) and a probe's probabilities (one value per image, left out of
the lists), with no filter and with a filter keeping 10 %. The page asks for it once when it opens.

    PYTHONPATH=. python benchmarks/bench_facets.py --size 100000

Prints the median and the slowest of ``--runs`` calls per filter.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from medsearch.storage.facets import facets
from medsearch.storage.learn import replace_field
from medsearch.storage.store import ModelRecord, Store

from benchmarks.bench_query import fill

FILTERS = {"none": (), "10%": ("modality = 'CR'",)}


def add_fields(store: Store, count: int) -> None:
    ids = range(1, count + 1)
    rng = np.random.default_rng(0)
    replace_field(store, "split", "bench", "text", {i: "train" if i % 5 else "test" for i in ids})
    replace_field(store, "grade", "bench", "number", {i: i % 5 for i in ids})
    replace_field(store, "probe", "bench", "number", dict(zip(ids, rng.random(count).tolist(), strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "store", create=True, writable=True)
        store.bind_model(ModelRecord("bench", "0", 1152, "bench"))
        fill(store, args.size)
        add_fields(store, args.size)
        for label, where in FILTERS.items():
            seconds = []
            for _ in range(args.runs):
                started = time.perf_counter()
                body = facets(store, where)
                seconds.append(time.perf_counter() - started)
            print(f"{args.size:>8} images, filter {label:>4}: median {1000 * float(np.median(seconds)):7.0f} ms, "
                  f"slowest {1000 * max(seconds):7.0f} ms; lists: {', '.join(body['columns'])}", flush=True)
        store.close()


if __name__ == "__main__":
    main()
