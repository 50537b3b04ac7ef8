"""A store of millions of images (issue 21): build, search and grow an ``ivf-pq`` index from a real store.

Writes ``--count`` synthetic clustered 1152-d unit vectors (a mixture of Gaussians, one centre per 1 000
images) with DICOM-like rows (path, content hash, three UIDs, patient key; series of 100 images; 1 % of
them modality MR, the filter), computing the exact top 10 of the query sets while writing. The rows go
in as ``medsearch.storage.writes`` writes them (12-bit vectors, one generation per transaction) but in bulk, 50 000
a transaction and without the series/study vectors, so that ten million take minutes, not the hour of
``write_batch``'s per-batch bookkeeping (``--write-batch`` uses it). Then, each in a fresh process so its
memory is its own:

- build: ``store.vectors.reindex("ivf-pq")`` from the database (trained on a sample, filled in batches) and the
  snapshot write; seconds and peak resident memory;
- serve: open the store read-only, load the snapshot, answer the queries one at a time through
  ``store.vectors.search`` (codes, then the exact re-rank from the stored 12-bit vectors), unfiltered and with
  the 1 % filter; p50/p95 ms, recall@10 against exact search, resident memory;
- grow: add 1 % more images in batches of 1 000 (as an index run commits them) and save the snapshot;
  seconds, and the share of the index added since training that ``medsearch check`` reports.

Two query sets: ``image`` (draws of the data's own mixture: similar-image queries) and ``text`` (the same,
pushed off the images by a shared offset and noise, as SigLIP text vectors lie far from every image:
best cosine ~0.2). Disk per image counts the database (with its WAL) and the index files.

    PYTHONPATH=. python benchmarks/bench_scale.py --count 1000000 [--store DIR] [--keep]
    PYTHONPATH=. python benchmarks/bench_scale.py --count 1000000 --store DIR --fresh SEED  # kept store, new queries
    PYTHONPATH=. python benchmarks/bench_scale.py --store DIR --rerank [--truth truth_seedN.npz] [--stages ...]

``--rerank`` compares the re-rank's row sources on a kept store: its vector file in float32, float16 and
int8 rows (``rerank-rows``: the re-rank alone from each, in one process; ``rows-X`` then ``serve``: whole
queries; ``serve-codes``: int8 ranked by the codes alone), the database (``serve-database``), and FAISS's
``IVFPQFastScan`` + ``IndexRefineFlat`` query by query (``paired``). It rewrites the store's vector file:
run it on a copy of a store you want to keep as it is.

Prints JSON and writes it to benchmarks/results/bench_scale_<count>.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

DIM = 1152
PER_CENTRE = 1000
PER_SERIES = 100
FILTER = ["modality = 'MR'"]
RESULTS = Path(__file__).parent / "results"


def mixture(count: int, seed: int) -> tuple[np.ndarray, Any]:
    """The centres of the data's mixture and a generator of its chunks."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((max(1, count // PER_CENTRE), DIM), dtype=np.float32)
    return means, rng


def draw(means: np.ndarray, rng: Any, n: int, noise: float = 0.8) -> np.ndarray:
    block = means[rng.integers(0, len(means), n)] + noise * rng.standard_normal((n, DIM), dtype=np.float32)
    return block / np.linalg.norm(block, axis=1, keepdims=True)


def query_sets(means: np.ndarray, seed: int = 99) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = draw(means, rng, 100)
    gap = rng.standard_normal(DIM).astype(np.float32)
    text = image + 1.5 * gap / np.linalg.norm(gap) + 2.0 * rng.standard_normal((100, DIM), dtype=np.float32) / 34
    return {"image": image, "text": (text / np.linalg.norm(text, axis=1, keepdims=True)).astype(np.float32)}


class RunningTop:
    """The exact top ``k`` ids of each query over rows seen so far."""

    def __init__(self, queries: np.ndarray, k: int = 10) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(queries), k), -1, dtype=np.int64)

    def see(self, ids: np.ndarray, rows: np.ndarray) -> None:
        if len(ids) == 0:
            return
        scores = np.hstack([self.scores, self.queries @ rows.T])
        every = np.hstack([self.ids, np.broadcast_to(ids, (len(self.queries), len(ids)))])
        best = np.argsort(-scores, axis=1)[:, : self.k]
        self.scores = np.take_along_axis(scores, best, axis=1)
        self.ids = np.take_along_axis(every, best, axis=1)


class Truth:
    """The exact top 10 of each query set over every row seen, and over the rows of the filter (MR)."""

    def __init__(self, sets: dict[str, np.ndarray]) -> None:
        self.sets = sets
        self.tops = {name: (RunningTop(queries), RunningTop(queries)) for name, queries in sets.items()}

    def see(self, ids: np.ndarray, rows: np.ndarray, picked: np.ndarray) -> None:
        """Rows with their ids; ``picked``: which of them pass the filter."""
        for every, filtered in self.tops.values():
            every.see(ids, rows)
            filtered.see(ids[picked], rows[picked])

    def save(self, path: Path) -> None:
        np.savez(path, **{f"{name}_{which}": top.ids for name, pair in self.tops.items()
                          for which, top in zip(("all", "filtered"), pair, strict=True)},
                 **{f"{name}_queries": queries for name, queries in self.sets.items()})


def rows_for(start: int, vectors: np.ndarray, rng: Any, tag: str = "") -> list[Any]:
    from medsearch.storage.writes import NewImage

    images = []
    for offset, vector in enumerate(vectors):
        n = start + offset
        series, study = n // PER_SERIES, n // (PER_SERIES * 3)
        images.append(NewImage(
            path=f"/archive/{tag}p{study % 50_000:05d}/{study}/{series}/{n}.dcm", frame_number=0, size=524_288,
            mtime_ns=1_700_000_000_000_000_000 + n, content_hash=hashlib.sha256(f"{tag}{n}".encode()).hexdigest(),
            embedding=vector, metadata={
                "file_format": "dicom", "width": 512, "height": 512,
                "modality": "MR" if rng.random() < 0.01 else "CT",
                "study_instance_uid": f"1.2.826.0.1.3680043.8.498.{tag}1{study}",
                "series_instance_uid": f"1.2.826.0.1.3680043.8.498.{tag}2{series}",
                "sop_instance_uid": f"1.2.826.0.1.3680043.8.498.{tag}3{n}",
                "patient_key": hashlib.sha256(f"patient{study % 50_000}".encode()).hexdigest(),
                "study_date": None}))
    return images


def populate(directory: Path, count: int, through_write_batch: bool) -> dict[str, Any]:
    """Write the store; returns the seconds it took and the exact answers of the query sets."""
    from medsearch.storage.store import ModelRecord, Store
    from medsearch.storage.writes import Batch, write_batch

    means, rng = mixture(count, 1)
    truth = Truth(query_sets(means))
    started = time.perf_counter()
    step = 10_000 if through_write_batch else 50_000
    with Store.open(directory, create=True, writable=True) as store:
        store.bind_model(ModelRecord("synthetic", "scale", DIM, "3"))
        for start in range(0, count, step):
            vectors = draw(means, rng, min(step, count - start))
            images = rows_for(start, vectors, rng)
            if through_write_batch:
                write_batch(store, Batch(images=images))
            else:
                bulk_insert(store, images)
            ids = np.arange(start + 1, start + 1 + len(vectors), dtype=np.int64)  # ids are 1.. in order
            truth.see(ids, vectors, np.array([image.metadata["modality"] == "MR" for image in images]))
            if start % 1_000_000 < step:
                print(f"  wrote {start + len(vectors)} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        stored = store.image_count()
    assert stored == count, (stored, count)
    truth.save(directory / "truth.npz")
    return {"populate_s": round(time.perf_counter() - started, 1)}


def bulk_insert(store: Any, images: list[Any]) -> None:
    """``images`` as rows of the images and vectors tables in one transaction that bumps the generation."""
    from medsearch.storage import vector_codec
    from medsearch.storage.models import Image, ImageVector
    from medsearch.storage.writes import STORED_KEYS
    from sqlalchemy import insert

    with store.write_session() as session:
        generation = store.bump_generation(session)
        ids = session.scalars(insert(Image).returning(Image.id, sort_by_parameter_order=True), [
            {**{key: value for key, value in image.metadata.items() if key in STORED_KEYS}, "path": image.path,
             "frame_number": 0, "size": image.size, "mtime_ns": image.mtime_ns, "content_hash": image.content_hash,
             "generation": generation} for image in images]).all()
        session.execute(insert(ImageVector), [{"id": i, "embedding": vector_codec.encode(image.embedding)}
                                              for i, image in zip(ids, images, strict=True)])


def stage_build(directory: Path) -> dict[str, Any]:
    from medsearch.storage.store import Store

    started = time.perf_counter()
    with Store.open(directory, writable=True) as store:
        store.vectors.reindex("ivf-pq")
        index = store.vectors.index()
        facts = {"lists": int(index.nlist), "probes": int(index.nprobe), "codes": int(index.pq.M)}
    return {"build_s": round(time.perf_counter() - started, 1), **facts, **_memory()}


def stage_rows(directory: Path, dtype: str) -> dict[str, Any]:
    """Write the store's vector file again, its rows in ``dtype`` (float16, float32 or int8)."""
    from medsearch.storage import vector_file
    from medsearch.storage.store import Store

    vector_file.ROW_DTYPE = dtype
    started = time.perf_counter()
    with Store.open(directory, writable=True) as store:
        store.vectors.rewrite_vector_file()
        rerank = store.vectors.vector_file()
        assert rerank is not None and rerank.base is not None
        size = rerank.base.path.stat().st_size
    return {"rows": dtype, "rewrite_s": round(time.perf_counter() - started, 1),
            "vector_file_bytes_per_image": round(size / max(1, rerank.count()))}


def stage_serve(directory: Path, truth_file: str = "truth.npz", from_database: bool = False,
                codes_only: bool = False) -> dict[str, Any]:
    """Serve the query sets; ``from_database``: with the re-rank reading the database (as before the vector
    file, and as a reader of a store without one does); ``codes_only``: int8 rows ranked by their codes
    alone (``reranked.INT8_REFINED`` 0: none read again from the database)."""
    from medsearch.storage import queries, rerank_vectors, reranked
    from medsearch.storage.store import Store
    from medsearch.storage.vector_file import VectorFileError

    if codes_only:
        reranked.INT8_REFINED = 0
    rerank_times: list[float] = []
    real_rescored = reranked.rescored

    def timed_rescored(*args: Any) -> Any:  # the re-rank alone: gather, score, top k
        t0 = time.perf_counter()
        try:
            return real_rescored(*args)
        finally:
            rerank_times.append(1000 * (time.perf_counter() - t0))
    reranked.rescored = timed_rescored  # type: ignore[assignment]
    if from_database:
        def refuse(*_args: Any) -> Any:
            raise VectorFileError("benchmark: read the database")
        rerank_vectors.RerankVectors.opened = refuse  # type: ignore[method-assign, assignment]
    truth = np.load(directory / truth_file)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with Store.open(directory) as store:
        store.vectors.index()
        out["load_s"] = round(time.perf_counter() - started, 1)
        rerank = store.vectors.vector_file()
        out["rerank_from"] = "database" if rerank is None else (
            f"vector file ({'int8' if rerank.quantizer is not None else rerank.dtype.name})")
        started = time.perf_counter()
        out["warmed_vectors"] = store.vectors.warm_vectors(threading.Event())  # as `medsearch serve` does at start
        out["warm_s"] = round(time.perf_counter() - started, 1)
        allowed = queries.ids_where(store, FILTER)
        out["filter_ids"] = len(allowed)
        store.vectors.search(truth["image_queries"][0], 10)  # warm-up: the statements compiled, the first pages read
        for name in ("image", "text"):
            for which, subset in (("all", None), ("filtered", allowed)):
                found, times = [], []
                rerank_times.clear()
                for query in truth[f"{name}_queries"]:
                    t0 = time.perf_counter()
                    _scores, ids = store.vectors.search(query, 10, subset)
                    times.append(1000 * (time.perf_counter() - t0))
                    found.append(ids[0])
                expected = truth[f"{name}_{which}"]
                hit = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, expected, strict=True)])
                out[f"{name}_{which}"] = {"recall@10": round(float(hit), 3),
                                          "p50_ms": round(float(np.median(times)), 2),
                                          "p95_ms": round(float(np.percentile(times, 95)), 2),
                                          "rerank_p50_ms": round(float(np.median(rerank_times)), 3)}
    return {**out, **_memory()}


def stage_rerank_rows(directory: Path, truth_file: str = "truth.npz") -> dict[str, Any]:
    """The re-rank alone in one process, per row type: the store's vector file written again as float16 and
    int8 rows in a temporary folder beside it, all three read into the page cache, then for each query its
    ``RERANK_DEPTH`` candidates (from the store's codes) gathered and scored from each file in turn: the whole
    re-rank (``reranked.rescored``: figures and recall) and the rows' read and product alone (``rows_p50_ms``)."""
    from medsearch.storage import index_choice, vector_file
    from medsearch.storage.faiss_calls import search_index
    from medsearch.storage.reranked import rescored
    from medsearch.storage.store import Store

    truth = np.load(directory / truth_file)
    out: dict[str, Any] = {}
    with Store.open(directory) as store, tempfile.TemporaryDirectory(dir=directory.parent) as folder:
        base = store.vectors.vector_file()
        assert base is not None and base.base is not None and base.quantizer is None, "a float vector file first"
        files: dict[str, Any] = {str(base.dtype.name): base}
        for dtype in ("float16", "int8"):
            started = time.perf_counter()
            files[dtype] = base.written(Path(folder), dtype)
            out[f"write_{dtype}_s"] = round(time.perf_counter() - started, 1)
        for rerank in files.values():
            assert rerank.base is not None
            vector_file.warm(rerank.base.path, threading.Event())
        index = store.vectors.index()
        for name in ("image", "text"):
            asked = truth[f"{name}_queries"]
            _codes, found = search_index(index, asked, index_choice.RERANK_DEPTH)
            times: dict[str, list[float]] = {dtype: [] for dtype in files}
            raw: dict[str, list[float]] = {dtype: [] for dtype in files}
            hits: dict[str, list[np.ndarray]] = {dtype: [] for dtype in files}
            for dtype, rerank in files.items():  # each file's rows for every query, then the whole re-rank
                for query, candidates in zip(asked, found, strict=True):
                    t0 = time.perf_counter()
                    rows = rerank.for_rerank(np.sort(candidates))
                    _products = rows.scores(query[np.newaxis]) if dtype == "int8" else rows @ query
                    raw[dtype].append(1000 * (time.perf_counter() - t0))
            for query, candidates in zip(asked, found, strict=True):
                for dtype, rerank in files.items():
                    t0 = time.perf_counter()
                    _scores, ids = rescored(query[np.newaxis], candidates[np.newaxis], 10, rerank.for_rerank)
                    times[dtype].append(1000 * (time.perf_counter() - t0))
                    hits[dtype].append(ids[0])
            for dtype in files:
                out[f"{name}_{dtype}"] = {**_figures(times[dtype], hits[dtype], truth[f"{name}_all"]),
                                          "rows_p50_ms": round(float(np.median(raw[dtype])), 3)}
    return out


def peer_index(directory: Path, allowed: np.ndarray) -> tuple[Any, Any, Any, Any]:
    """FAISS used directly on the same lists, codes, probes and re-rank depths as medsearch: the store's own
    ivf-pq snapshot in ``IndexRefine`` over an ``IndexFlatIP`` of the stored vectors (float32, position =
    image id). Returns (index, unfiltered search parameters, parameters of the filter ``allowed``, what
    they point into)."""
    import faiss
    from medsearch.storage import index_choice, snapshot, vector_codec
    from medsearch.storage.reranked import WIDEST

    manifest = snapshot.read_manifest(directory)
    assert manifest is not None
    ivf = faiss.read_index(str(directory / manifest.file))
    flat = faiss.IndexFlatIP(DIM)
    flat.add(np.zeros((1, DIM), dtype=np.float32))  # position 0: no image has id 0
    with sqlite3.connect(directory / "medsearch.db") as connection:
        last = 0
        while rows := connection.execute("SELECT id, embedding FROM image_vectors WHERE id > ? ORDER BY id "
                                         "LIMIT 100000", (last,)).fetchall():
            assert rows[0][0] == flat.ntotal, "ids 1.. without gaps"
            flat.add(vector_codec.decode_many(row[1] for row in rows))
            last = rows[-1][0]
    last_row = flat.reconstruct(flat.ntotal - 1)[np.newaxis]
    flat.remove_ids(faiss.IDSelectorRange(flat.ntotal - 1, flat.ntotal))
    refined = faiss.IndexRefine(ivf, flat)  # positions 0..N-1 as it asks, then the row of id N
    flat.add(last_row)
    selector = faiss.IDSelectorBatch(allowed)
    wide = min(ivf.nlist, int(np.ceil(ivf.nprobe * min(WIDEST, np.sqrt(ivf.ntotal / len(allowed))))))
    ivf_params = faiss.SearchParametersIVF(sel=selector, nprobe=wide)
    filtered = faiss.IndexRefineSearchParameters(k_factor=index_choice.FILTERED_RERANK_DEPTH / 10,
                                                 base_index_params=ivf_params)
    plain = faiss.IndexRefineSearchParameters(k_factor=index_choice.RERANK_DEPTH / 10)
    return refined, plain, filtered, (ivf, flat, selector, ivf_params)  # the last: kept alive by the caller


def stage_peer(directory: Path, truth_file: str = "truth.npz") -> dict[str, Any]:
    """FAISS's ``IVFPQFastScan`` + refine (``peer_index``) alone, on the query sets."""
    import faiss
    from medsearch.storage import queries
    from medsearch.storage.store import Store

    faiss.omp_set_num_threads(1)
    truth = np.load(directory / truth_file)
    with Store.open(directory) as store:
        allowed = queries.ids_where(store, FILTER)
    refined, plain, filtered, _alive = peer_index(directory, allowed)
    out: dict[str, Any] = {"peer": "faiss IndexIVFPQFastScan + IndexRefineFlat (the store's own codes)"}
    for name in ("image", "text"):
        for which, params in (("all", plain), ("filtered", filtered)):
            found, times = [], []
            for query in truth[f"{name}_queries"]:
                t0 = time.perf_counter()
                _scores, ids = refined.search(query[np.newaxis], 10, params=params)
                times.append(1000 * (time.perf_counter() - t0))
                found.append(ids[0])
            out[f"{name}_{which}"] = _figures(times, found, truth[f"{name}_{which}"])
    return {**out, **_memory()}


def stage_paired(directory: Path, truth_file: str = "truth.npz") -> dict[str, Any]:
    """medsearch (its vector file warmed, as ``serve`` starts) and FAISS (``peer_index``) in one process,
    query by query in turn, so that a busy machine slows both alike: each one's p50/p95/recall@10 and the
    median of the per-query time ratios. Resident memory is read before the peer is built."""
    import faiss
    from medsearch.storage import queries
    from medsearch.storage.store import Store

    faiss.omp_set_num_threads(1)
    truth = np.load(directory / truth_file)
    out: dict[str, Any] = {}
    with Store.open(directory) as store:
        store.vectors.index()
        rerank = store.vectors.vector_file()
        out["rerank_from"] = "database" if rerank is None else (
            f"vector file ({'int8' if rerank.quantizer is not None else rerank.dtype.name})")
        out["warmed_vectors"] = store.vectors.warm_vectors(threading.Event())
        allowed = queries.ids_where(store, FILTER)
        store.vectors.search(truth["image_queries"][0], 10)
        for query in truth["image_queries"]:  # every re-rank row these queries read, in the page cache
            store.vectors.search(query, 10)
        out["medsearch_memory"] = _memory()
        refined, plain, filtered, _alive = peer_index(directory, allowed)
        for name in ("image", "text"):
            for which, subset, params in (("all", None, plain), ("filtered", allowed, filtered)):
                ours, theirs, ours_found, theirs_found = [], [], [], []
                for query in truth[f"{name}_queries"]:
                    t0 = time.perf_counter()
                    ours_found.append(store.vectors.search(query, 10, subset)[1][0])
                    t1 = time.perf_counter()
                    theirs_found.append(refined.search(query[np.newaxis], 10, params=params)[1][0])
                    t2 = time.perf_counter()
                    ours.append(1000 * (t1 - t0))
                    theirs.append(1000 * (t2 - t1))
                expected = truth[f"{name}_{which}"]
                out[f"{name}_{which}"] = {"medsearch": _figures(ours, ours_found, expected),
                                          "faiss": _figures(theirs, theirs_found, expected),
                                          "ratio_p50": round(float(np.median(np.array(ours) / np.array(theirs))), 2)}
    out["peer_memory"] = _memory()
    return out


def _figures(times: list[float], found: list[np.ndarray], expected: np.ndarray) -> dict[str, float]:
    hit = np.mean([len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, expected, strict=True)])
    return {"recall@10": round(float(hit), 3), "p50_ms": round(float(np.median(times)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2)}


def stage_grow(directory: Path) -> dict[str, Any]:
    from medsearch.storage.store import Store
    from medsearch.storage.writes import Batch, write_batch

    with Store.open(directory, writable=True) as store:
        count = store.image_count()
        store.vectors.index()
        means, rng = mixture(count, 1)
        added = max(1, count // 100)
        started = time.perf_counter()
        for start in range(0, added, 1000):
            vectors = draw(means, np.random.default_rng(start), min(1000, added - start))
            write_batch(store, Batch(images=rows_for(start, vectors, rng, tag="9")))
        store.vectors.save_snapshot()
        seconds = time.perf_counter() - started
        since, total = store.vectors.added_after_training()
    return {"grow_images": added, "grow_s": round(seconds, 1), "added_after_training": since,
            "added_share": round(since / total, 4), **_memory()}


def _memory() -> dict[str, float]:
    """Resident memory now and at its peak, and of it the process's own (anonymous) memory: the rest is
    file pages it has mapped (its libraries), which the page cache holds anyway."""
    status = Path("/proc/self/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split()[1] for line in status
              if line.startswith(("VmRSS", "VmHWM", "RssAnon", "RssFile"))}
    return {"rss_gb": round(int(fields["VmRSS"]) / 2**20, 2), "peak_rss_gb": round(int(fields["VmHWM"]) / 2**20, 2),
            "anon_gb": round(int(fields["RssAnon"]) / 2**20, 2), "file_gb": round(int(fields["RssFile"]) / 2**20, 2)}


def disk(directory: Path, count: int) -> dict[str, Any]:
    database = sum(p.stat().st_size for p in directory.glob("medsearch.db*"))
    index = sum(p.stat().st_size for p in directory.glob("index*.faiss")) + sum(
        p.stat().st_size for p in directory.glob("units*"))
    vector_file = sum(p.stat().st_size for p in directory.glob("vectors.*.vec"))
    with sqlite3.connect(directory / "medsearch.db") as connection:
        page = int(connection.execute("PRAGMA page_size").fetchone()[0])
        vector = connection.execute("SELECT avg(length(embedding)) FROM (SELECT embedding FROM image_vectors "
                                    "LIMIT 10000)").fetchone()[0]
    return {"database_bytes_per_image": round(database / count), "index_bytes_per_image": round(index / count),
            "vector_file_bytes_per_image": round(vector_file / count),
            "store_bytes_per_image": round((database + index + vector_file) / count), "page_size": page,
            "vector_bytes": round(float(vector))}


def fresh_answers(directory: Path, count: int, seed: int) -> str:
    """Draw query sets from ``seed`` (of the mixture of a ``count``-image store) and compute their exact
    answers over the vectors the store holds now (read in id order from the vectors table alone, the
    filter's ids from its index: what a serving machine's page cache holds); returns the name of the file
    written beside the store."""
    from medsearch.storage import vector_codec

    truth = Truth(query_sets(mixture(count, 1)[0], seed))
    with sqlite3.connect(directory / "medsearch.db") as connection:
        older = connection.execute("SELECT count(*) FROM images WHERE length(embedding) > 0").fetchone()[0]
        assert older == 0, "vectors of an older store: run `medsearch upgrade --vectors-only` first"
        mr = np.array(sorted(i for (i,) in connection.execute("SELECT id FROM images WHERE modality = 'MR'")))
        last = 0
        while rows := connection.execute("SELECT id, embedding FROM image_vectors WHERE id > ? ORDER BY id "
                                         "LIMIT 100000", (last,)).fetchall():
            ids = np.array([row[0] for row in rows], dtype=np.int64)
            truth.see(ids, vector_codec.decode_many(row[1] for row in rows), np.isin(ids, mr))
            last = int(ids[-1])
    name = f"truth_seed{seed}.npz"
    truth.save(directory / name)
    return name


def in_child(stage: str, directory: Path, truth_file: str = "truth.npz") -> dict[str, Any]:
    """Run ``stage`` in a fresh interpreter (its memory is its own) and return what it printed; a serve
    stage on one thread (FAISS and BLAS), as a query is measured."""
    one_thread = stage.startswith(("serve", "peer", "paired", "rerank"))
    threads = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} if one_thread else {}
    done = subprocess.run([sys.executable, "-X", "faulthandler", __file__, "--stage", stage, "--store", str(directory),
                           "--truth", truth_file],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ".", **threads})
    if done.returncode:
        raise SystemExit(f"the {stage} stage failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="where to write the store (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument("--write-batch", action="store_true", help="write through medsearch.storage.writes.write_batch")
    parser.add_argument("--fresh", type=int, metavar="SEED", help=(
        "on the kept --store written with --count: draw new query sets from SEED, compute their exact answers "
        "over the store as it is now, and serve only those (each query asked once, its rows not read before)"))
    parser.add_argument("--rerank", action="store_true", help=(
        "on the kept --store (built with --count): the re-rank side by side in one run: medsearch with int8, "
        "float16 and float32 vector files and reading the database, and FAISS IVFPQFastScan + IndexRefineFlat"))
    parser.add_argument("--stages", default=("rows-float32,rerank-rows,paired,serve-database,rows-int8,serve,"
                                             "serve-codes,rows-float16,serve,rows-float32"),
                        help="with --rerank: the stages, in order (paired: medsearch and FAISS query by query)")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--truth", default="truth.npz", help=(
        "with --rerank: the query sets and exact answers to serve (a file beside the store, e.g. one --fresh wrote)"))
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(STAGES[args.stage](args.store, args.truth)))
        return
    if args.rerank:
        side_by_side(args.store, args.stages.split(","), args.truth)
        return
    if args.fresh is not None:
        if args.store is None or not (args.store / "medsearch.db").exists():
            raise SystemExit("--fresh needs --store, a store kept by an earlier run (--keep)")
        started = time.perf_counter()
        truth = fresh_answers(args.store, args.count, args.fresh)
        figures = {"count": _count(args.store), "cpu": _cpu(), "fresh_seed": args.fresh,
                   "answers_s": round(time.perf_counter() - started, 1), "serve": in_child("serve", args.store, truth)}
        print(json.dumps(figures, indent=1))
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"bench_scale_{figures['count']}_fresh.json").write_text(json.dumps(figures, indent=1))
        return
    directory = args.store or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        figures: dict[str, Any] = {"count": args.count, "cpu": _cpu(),
                                   **populate(directory, args.count, args.write_batch)}
        for stage in ("build", "serve", "grow"):
            figures[stage] = in_child(stage, directory)
            print(f"  {stage}: {figures[stage]}", file=sys.stderr)
        figures["disk"] = disk(directory, args.count + figures["grow"]["grow_images"])
        figures["peak_rss_children_gb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2)
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(json.dumps(figures, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_scale_{args.count}.json").write_text(json.dumps(figures, indent=1))


STAGES = {
    "build": lambda store, _truth: stage_build(store), "grow": lambda store, _truth: stage_grow(store),
    "serve": stage_serve, "serve-database": partial(stage_serve, from_database=True), "peer": stage_peer,
    "serve-codes": partial(stage_serve, codes_only=True),
    "paired": stage_paired,
    "rows-float16": lambda store, _truth: stage_rows(store, "float16"),
    "rows-float32": lambda store, _truth: stage_rows(store, "float32"),
    "rows-int8": lambda store, _truth: stage_rows(store, "int8"),
    "rerank-rows": stage_rerank_rows,
}


def side_by_side(directory: Path, stages: list[str], truth_file: str = "truth.npz") -> None:
    """``--rerank``: build the kept store's ivf-pq index if it has none, then the ``stages`` named."""
    if directory is None or not (directory / "truth.npz").exists():
        raise SystemExit("--rerank needs --store, a store kept by an earlier run (--keep)")
    figures: dict[str, Any] = {"count": _count(directory), "cpu": _cpu()}
    if not (directory / "index.json").exists() or '"ivf-pq"' not in (directory / "index.json").read_text():
        figures["build"] = in_child("build", directory)
    for stage in stages:
        figures.setdefault(stage, [])
        figures[stage].append(in_child(stage, directory, truth_file))
        print(f"  {stage}: {figures[stage][-1]}", file=sys.stderr)
    figures["disk"] = disk(directory, figures["count"])
    print(json.dumps(figures, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"bench_scale_{figures['count']}_rerank.json").write_text(json.dumps(figures, indent=1))


def _count(directory: Path) -> int:
    with sqlite3.connect(directory / "medsearch.db") as connection:
        return int(connection.execute("SELECT count(*) FROM images").fetchone()[0])


def _cpu() -> str:
    names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")]
    return f"{len(names)} x {names[0] if names else 'unknown'}"


if __name__ == "__main__":
    main()
