"""The reader/writer rule inside the vector index: threads that share one store search it with no lock
of their own while another process commits batches (adds and removals) and the index catches up under
them. Every answer is whole: k hits, no duplicate, sorted, and a filtered search over vectors that never
change equals brute force's answer; afterwards the index holds exactly the database's ids. The lock
itself: readers share it, a writer waits for them, and a waiting writer holds back new readers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from medsearch.storage.model_record import ModelRecord
from medsearch.storage.models import Image
from medsearch.storage.rwlock import ReadWriteLock
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, NewImage, write_batch
from sqlalchemy import select

DIM, FIRST, K, THREADS = 32, 300, 10, 4
BATCHES, PER_BATCH = 60, 20

WRITER = r"""
import sys
import numpy as np
from medsearch.storage.store import Store
from medsearch.storage.writes import Batch, NewImage, write_batch

directory, dim, batches, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(7)
with Store.open(directory, writable=True) as store:
    for batch in range(batches):
        rows = rng.standard_normal((per, dim)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        images = [NewImage(f"/w/{batch}-{i}.png", 0, 1, 1, f"w{batch}-{i}", rows[i]) for i in range(per)]
        gone = [f"/w/{batch - 1}-{i}.png" for i in range(0, per, 4)] if batch else []
        write_batch(store, Batch(images=images, remove_paths=gone))
"""


def _unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _first_store(directory: Path) -> dict[int, np.ndarray]:
    """A store of FIRST vectors under /x/; returns {id: vector as stored} of the ones a filtered search
    keeps (a third of them, never changed by the writer)."""
    rows = _unit_rows(FIRST, 1)
    with Store.open(directory, create=True, writable=True) as store:
        store.bind_model(ModelRecord("threads-test", "rev", DIM, "prep"))
        write_batch(store, Batch(images=[NewImage(f"/x/{i}.png", 0, 1, 1, f"x{i}", rows[i]) for i in range(FIRST)]))
        with store.read_session() as session:
            kept = np.asarray(list(session.scalars(select(Image.id).order_by(Image.id)))[::3], dtype=np.int64)
        return dict(zip(kept.tolist(), store.vectors.stored_vectors(kept), strict=True))


class Searcher(threading.Thread):
    """Searches the shared store until ``stop``; records each inconsistency (and any exception)."""

    def __init__(self, store: Store, kept: dict[int, np.ndarray], seed: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.store, self.stop, self.rng = store, stop, np.random.default_rng(seed)
        self.allowed = np.asarray(sorted(kept), dtype=np.int64)
        self.matrix = np.vstack([kept[i] for i in self.allowed])
        self.problems: list[str] = []
        self.generations: set[int] = set()
        self.searches = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self._once(_unit_rows(1, int(self.rng.integers(1 << 30)))[0])
        except Exception as error:  # the test reports it
            self.problems.append(f"{type(error).__name__}: {error}")

    def _once(self, query: np.ndarray) -> None:
        scores, ids = self.store.vectors.search(query, K)
        self._check("unfiltered", scores[0], ids[0])
        scores, ids = self.store.vectors.search(query, K, self.allowed)
        self._check("filtered", scores[0], ids[0])
        exact = self.matrix @ query  # brute force over vectors the writer never changes
        if not np.isin(ids[0], self.allowed).all():
            self.problems.append(f"filtered: {ids[0].tolist()} holds ids the filter does not allow")
            return
        found = exact[np.searchsorted(self.allowed, ids[0])]
        if np.abs(found - scores[0]).max() > 1e-4 or found.min() < np.sort(exact)[-K] - 1e-4:
            self.problems.append(f"filtered: {ids[0].tolist()} is not brute force's top {K}")
        self.generations.add(self.store.vectors.generation())
        self.searches += 1

    def _check(self, label: str, scores: np.ndarray, ids: np.ndarray) -> None:
        if (ids < 0).any() or len(set(ids.tolist())) != K:
            self.problems.append(f"{label}: {ids.tolist()} is not {K} distinct hits")
        if not np.all(np.diff(scores) <= 1e-6):
            self.problems.append(f"{label}: scores not sorted: {scores.tolist()}")


def test_threads_search_one_store_while_another_process_commits(tmp_path: Path) -> None:
    kept = _first_store(tmp_path)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(DIM), str(BATCHES), str(PER_BATCH)],
                              cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    with Store.open(tmp_path) as store:
        searchers = [Searcher(store, kept, seed, stop) for seed in range(THREADS)]
        for searcher in searchers:
            searcher.start()
        try:
            _out, err = writer.communicate(timeout=300)
        finally:
            stop.set()
            for searcher in searchers:
                searcher.join(timeout=60)
        assert writer.returncode == 0, err[-2000:]
        problems = [problem for searcher in searchers for problem in searcher.problems]
        assert problems == [], problems[:5]
        seen = set().union(*(searcher.generations for searcher in searchers))
        print(f"searches: {sum(s.searches for s in searchers)}; generations seen: {len(seen)}")
        assert len(seen) >= 5, "the index caught up while the threads searched"
        served = store.vectors.ids()
        with store.read_session() as session:
            stored = list(session.scalars(select(Image.id).order_by(Image.id)))
        assert len(served) == len(set(served.tolist())) and sorted(served.tolist()) == stored
        assert store.vectors.generation() == store.generation() == BATCHES + 1


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_readers_share_the_lock_and_a_waiting_writer_comes_first() -> None:
    lock = ReadWriteLock()
    both_reading, release_readers, arriving = threading.Barrier(3, timeout=10), threading.Event(), threading.Event()
    order: list[str] = []

    def reader(name: str) -> None:
        with lock.reading():
            both_reading.wait()  # two readers inside at once, or this times out
            release_readers.wait(timeout=10)
            order.append(name)

    def writer() -> None:
        with lock.writing():
            order.append("writer")

    def late_reader() -> None:
        arriving.set()
        with lock.reading():
            order.append("late reader")

    threads = [threading.Thread(target=reader, args=(f"reader {i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    both_reading.wait()
    threads.append(threading.Thread(target=writer))
    threads[-1].start()
    _wait_for(lambda: lock._writers_waiting == 1, "the writer to wait")
    threads.append(threading.Thread(target=late_reader))
    threads[-1].start()
    assert arriving.wait(timeout=10) and not order  # it comes while the readers still hold the lock
    release_readers.set()
    for thread in threads:
        thread.join(timeout=10)
    assert order[:2] == ["reader 0", "reader 1"] or order[:2] == ["reader 1", "reader 0"]
    assert order[2:] == ["writer", "late reader"]
