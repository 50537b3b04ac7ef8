"""A store with an ``ivf-pq`` index (issue 21): search re-ranked from the stored 12-bit vectors, exact on
the filter, grown without a rebuild, retrained when too much came after training; older stores' float32
and float16 vectors shrunk in place, also when killed half way."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
from medsearch.storage import database, index_choice, queries, snapshot, vector_codec, vector_file, vector_rows
from medsearch.storage.check import check_store
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.shrink import shrink_vectors
from medsearch.storage.store import ModelRecord, Store
from medsearch.storage.vector_rows import VectorRows
from medsearch.storage.writes import Batch, NewImage, write_batch

from tests.storage.test_vector_codec import OLDER_FORMS

DIM = 64
COUNT = 3000
ROOT = Path(__file__).parents[2]


def clustered(count: int, seed: int, centres: int = 30) -> np.ndarray:
    """(count, DIM) float32 unit rows of one mixture (the centres are the same for every seed)."""
    means = np.random.default_rng(0).normal(size=(centres, DIM))
    rng = np.random.default_rng(seed)
    rows = means[rng.integers(0, centres, count)] + 0.7 * rng.normal(size=(count, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def images(rows: np.ndarray, start: int, folder: Path) -> list[NewImage]:
    """One image per row, each an (empty) file in ``folder``; every tenth is an MR (the tests' filter)."""
    for n in range(len(rows)):
        (folder / f"{start + n}.dcm").touch()
    return [NewImage(path=str(folder / f"{start + n}.dcm"), frame_number=0, size=1, mtime_ns=1,
                     content_hash=hashlib.sha256(str(start + n).encode()).hexdigest(), embedding=row,
                     metadata={"modality": "MR" if (start + n) % 10 == 0 else "CT"})
            for n, row in enumerate(rows)]


def fill(store: Store, rows: np.ndarray, start: int = 0) -> None:
    folder = store.directory.parent / "files"
    folder.mkdir(exist_ok=True)
    for first in range(0, len(rows), 500):
        write_batch(store, Batch(images=images(rows[first : first + 500], start + first, folder)))


@pytest.fixture
def pq_store(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "store"
    with Store.open(directory, create=True, writable=True) as store:
        store.bind_model(ModelRecord("synthetic", "r1", DIM, "3"))
        fill(store, clustered(COUNT, 1))
        store.vectors.reindex("ivf-pq")
    yield directory


def brute_force(store: Store, queries_: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    ids = queries.all_ids(store) if allowed is None else allowed
    matrix = store.vectors.stored_vectors(ids)
    return ids[np.argsort(-(queries_ @ matrix.T), axis=1)[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def test_search_is_re_ranked_and_exact_on_the_filter(pq_store: Path) -> None:
    wanted = clustered(40, 7)
    with Store.open(pq_store) as store:
        index = store.vectors.index()
        assert index_type_of(index) == "ivf-pq" == store.info().index_type
        assert json.loads((pq_store / snapshot.MANIFEST_FILE).read_text())["index_type"] == "ivf-pq"
        scores, found = store.vectors.search(wanted, 10)
        assert recall(found, brute_force(store, wanted, 10)) >= 0.95
        stored = store.vectors.stored_vectors(found[0])
        np.testing.assert_allclose(scores[0], stored @ wanted[0], rtol=1e-5)  # exact cosine, not PQ's
        assert (np.diff(scores, axis=1) <= 1e-6).all()
        mr = queries.ids_where(store, ["modality = 'MR'"])
        assert len(mr) == COUNT // 10
        _scores, kept = store.vectors.search(wanted, 10, mr)
        assert set(kept.ravel().tolist()) <= set(mr.tolist()) and (kept >= 0).all()
        assert recall(kept, brute_force(store, wanted, 10, mr)) >= 0.95
        few = mr[:4]
        _scores, tiny = store.vectors.search(wanted[:3], 10, few)
        assert (np.sort(tiny[:, :4], axis=1) == np.sort(few)).all() and (tiny[:, 4:] == -1).all()


def test_growing_adds_to_the_trained_index_until_a_retrain_is_due(pq_store: Path) -> None:
    with Store.open(pq_store, writable=True) as writer:
        codebook = faiss.vector_to_array(writer.vectors.index().pq.centroids)
        fill(writer, clustered(COUNT // 100, 2), start=COUNT)  # 1 %: no rebuild, no retrain
        assert writer.vectors.added_after_training() == (COUNT // 100, COUNT + COUNT // 100)
        np.testing.assert_array_equal(faiss.vector_to_array(writer.vectors.index().pq.centroids), codebook)
        writer.vectors.save_snapshot()
        assert "retrain" not in {p.kind for p in check_store(writer).problems}
    with Store.open(pq_store) as reader:  # the count survives the snapshot
        assert reader.vectors.added_after_training() == (COUNT // 100, COUNT + COUNT // 100)
        assert queries.snapshot_training(reader) == {"images": COUNT // 100, "share": round(1 / 101, 4),
                                                      "retrain_past": 0.2}
    shown = subprocess.run([sys.executable, "-m", "medsearch.cli", "info", "--store", str(pq_store), "--json"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["added_after_training"]["images"] == COUNT // 100
    newest = clustered(COUNT // 4, 3)
    with Store.open(pq_store, writable=True) as writer:
        fill(writer, newest, start=2 * COUNT)
        report = check_store(writer)
        assert [p.kind for p in report.problems] == ["retrain"] and not report.ok
        assert "medsearch reindex --index-type ivf-pq" in report.problems[0].message
        _scores, found = writer.vectors.search(newest[:20], 1)
        assert recall(found, brute_force(writer, newest[:20], 1)) >= 0.95  # still right, by the re-rank
        repaired = check_store(writer, repair=True)
        assert repaired.ok and writer.vectors.added_after_training()[0] == 0
        assert not check_store(writer).problems


@pytest.mark.parametrize("older", ["float32", "float16"])
def test_a_store_of_older_vectors_shrinks_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   older: str) -> None:
    directory = old_store(tmp_path, monkeypatch, older)
    assert page_size(directory) == 4096
    wanted = clustered(10, 9)
    with Store.open(directory, writable=True) as store:
        before = store.vectors.search(wanted, 10)
        report = check_store(store)
        assert report.ok and report.facts["older_vectors"] == COUNT
        assert "upgrade --vectors-only" in report.notes[0]
        assert vector_bytes(directory) == (COUNT * len(OLDER_FORMS[older](np.zeros(DIM))), 0)
        fill(store, clustered(5, 4), start=COUNT)  # new images go to the vectors table, in the older one too
        assert store.vectors.search(clustered(5, 4), 1)[0][:, 0] == pytest.approx(1.0, abs=1e-5)
        shrunk = shrink_vectors(store)
        assert shrunk.converted == COUNT and shrunk.vacuumed
        assert vector_bytes(directory) == (0, (COUNT + 5) * (8 + 3 * DIM // 2))  # tag, scale, 12 bits each
        assert check_store(store).facts["older_vectors"] == 0
        assert page_size(directory) == database.PAGE_SIZE == 32_768
        store.vectors.rebuild()
        after = store.vectors.search(wanted, 10)
        assert recall(after[1], before[1]) >= 0.99
        np.testing.assert_allclose(after[0], before[0], atol=1e-3)
        assert check_store(store).ok


# Shrinks the store in argv[1] in batches of 100 and stops for good after the fifth, with it committed.
STOPPER = r"""
import sys, time
from pathlib import Path
from medsearch.storage.shrink import shrink_vectors
from medsearch.storage.store import Store

def progress(done, _total):
    if done >= 500:
        Path(sys.argv[2]).write_text(str(done))
        while True:
            time.sleep(60)

shrink_vectors(Store.open(sys.argv[1], writable=True), progress, batch=100)
"""


def test_a_shrink_killed_half_way_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = old_store(tmp_path, monkeypatch)
    marker = tmp_path / "stopped"
    child = subprocess.Popen([sys.executable, "-c", STOPPER, str(directory), str(marker)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _wait in range(6000):  # until the fifth batch is committed (bounded: five minutes at most)
            if marker.exists() or child.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.05)
        assert marker.exists(), "the shrink never reached its fifth batch"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with Store.open(directory) as store:
        report = check_store(store)
        assert report.ok and report.facts["older_vectors"] == COUNT - 500  # five whole batches
        assert len(queries.ids_where(store, ["modality = 'MR'"])) == COUNT // 10
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", "upgrade", "--vectors-only", "--store",
                           str(directory), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["vectors"]["converted"] == COUNT - 500
    with Store.open(directory) as store:
        assert check_store(store).ok and check_store(store).facts["older_vectors"] == 0


def old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, older: str = "float32") -> Path:
    """A store as an older version wrote it: every vector a blob of the ``older`` form in its images row
    (``embedding BLOB NOT NULL``), no vectors table, a flat index, 4 KB pages."""
    directory = tmp_path / "old"
    with monkeypatch.context() as patched:
        patched.setattr(vector_codec, "encode", OLDER_FORMS[older])
        patched.setattr(database, "PAGE_SIZE", 4096)
        with Store.open(directory, create=True, writable=True) as store:
            store.bind_model(ModelRecord("synthetic", "r1", DIM, "3"))
            fill(store, clustered(COUNT, 1))
            store.vectors.save_snapshot()
    to_older_layout(directory / "medsearch.db")
    return directory


def to_older_layout(database_file: Path) -> None:
    """Move the vectors back into the images rows under the older table definition (SQLite's way to change
    one: a new table, the rows copied, the old one dropped, the new one renamed, its indexes made again)."""
    with sqlite3.connect(database_file) as connection:
        connection.execute("PRAGMA foreign_keys=OFF")
        table, indexes = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'images'").fetchone()[0], [
            sql for (sql,) in connection.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'images' AND sql IS NOT NULL")]
        assert "embedding BLOB," in table
        connection.execute(table.replace("CREATE TABLE images", "CREATE TABLE older_images", 1)
                           .replace("embedding BLOB,", "embedding BLOB NOT NULL,"))
        connection.execute("INSERT INTO older_images SELECT * FROM images")
        connection.execute("UPDATE older_images SET embedding = "
                           "(SELECT embedding FROM image_vectors WHERE image_vectors.id = older_images.id)")
        connection.execute("DROP TABLE image_vectors")
        connection.execute("DROP TABLE images")
        connection.execute("ALTER TABLE older_images RENAME TO images")
        for sql in indexes:
            connection.execute(sql)


def page_size(directory: Path) -> int:
    with sqlite3.connect(directory / "medsearch.db") as connection:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])


def vector_bytes(directory: Path) -> tuple[int, int]:
    """The bytes of the vectors in the images rows, and in the vectors table."""
    with sqlite3.connect(directory / "medsearch.db") as connection:
        return tuple(int(connection.execute(f"SELECT coalesce(sum(length(embedding)), 0) FROM {table}").fetchone()[0])
                     for table in ("images", "image_vectors"))


def test_a_loaded_index_reads_as_many_lists_as_the_code_says(pq_store: Path) -> None:
    """The lists a query reads and how they are scanned follow ``index_choice`` now, not the values the file
    was saved with."""
    with Store.open(pq_store, writable=True) as writer:
        writer.vectors.index().nprobe = 1
        writer.vectors.index().implem = 0
        writer.vectors.save_snapshot()
    with Store.open(pq_store) as reader:
        index = reader.vectors.index()
        assert index.nprobe == index_choice.pq_probes(index.nlist) > 1
        assert index.implem == index_choice.PQ_SCAN_IMPLEM  # a single query's lists over every core


def test_rows_are_read_on_one_connection_in_the_page_cache_and_in_parallel_past_it(pq_store: Path) -> None:
    with Store.open(pq_store) as store:
        ids = queries.all_ids(store)[::7]
        cached = VectorRows(store.engine)
        alone = cached.read(ids, DIM)
        assert cached._threads is None  # a small file: one connection
        past = VectorRows(store.engine)
        past._cached_limit = 4096  # as if the file were larger than the page cache holds
        np.testing.assert_array_equal(past.read(ids, DIM), alone)
        assert past._threads is not None
        past.close()
        np.testing.assert_array_equal(alone, store.vectors.stored_vectors(ids))


@pytest.mark.needs("fincore")
def test_the_snapshot_file_leaves_the_page_cache_once_loaded(pq_store: Path) -> None:
    """The index lives in memory after loading; its file's cached pages go back to the database rows."""
    path = snapshot.snapshot_file(pq_store)
    assert path is not None
    snapshot.file_sha256(path)  # read it all: cached now
    with Store.open(pq_store) as store:
        store.vectors.index()
    shown = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                           capture_output=True, text=True, check=True)
    assert int(shown.stdout.split()[0]) < path.stat().st_size // 10, shown.stdout


def test_a_removed_image_takes_its_vector_with_it(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store", create=True, writable=True) as store:
        store.bind_model(ModelRecord("synthetic", "r1", DIM, "3"))
        fill(store, clustered(20, 5))
        gone = [str(tmp_path / "files" / f"{n}.dcm") for n in range(0, 20, 2)]
        write_batch(store, Batch(remove_paths=gone))
        kept = queries.all_ids(store)
        assert len(kept) == 10
        with sqlite3.connect(tmp_path / "store" / "medsearch.db") as connection:
            held = sorted(i for (i,) in connection.execute("SELECT id FROM image_vectors"))
        assert held == sorted(kept.tolist())
        store.vectors.save_snapshot()
        assert check_store(store).ok


# Holds the SQLite database in argv[1] open (one read done) until killed; argv[2] says it has read.
HOLDER = r"""
import sqlite3, sys, time
from pathlib import Path

connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT count(*) FROM images").fetchall()
Path(sys.argv[2]).write_text("open")
while True:
    time.sleep(60)
"""


def test_the_compaction_waits_for_the_database_to_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = old_store(tmp_path, monkeypatch)
    marker = tmp_path / "holding"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory / "medsearch.db"), str(marker)])
    try:
        for _wait in range(6000):  # bounded: five minutes at most
            if marker.exists() or holder.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                holder.wait(timeout=0.05)
        assert marker.exists(), "the holder never opened the database"
        with Store.open(directory, writable=True) as store:
            moved = shrink_vectors(store)
            assert moved.converted == COUNT and not moved.vacuumed
            assert "another process has the database open" in moved.vacuum_note
            assert page_size(directory) == 4096 and not list(directory.glob("*.tmp*"))
            assert check_store(store).ok
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", "upgrade", "--vectors-only", "--store",
                           str(directory), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    compacted = json.loads(done.stdout)["vectors"]
    assert compacted["converted"] == 0 and compacted["vacuumed"]  # asked again: compacted with nothing to move
    assert compacted["bytes_after"] < compacted["bytes_before"] and page_size(directory) == database.PAGE_SIZE
    with Store.open(directory) as store:
        assert check_store(store).ok and len(queries.ids_where(store, ["modality = 'MR'"])) == COUNT // 10


def _cached_bytes(path: Path) -> int:
    shown = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                           capture_output=True, text=True, check=True)
    return int(shown.stdout.split()[0])


def _drop_from_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.needs("fincore")
def test_warming_reads_the_vectors_into_the_page_cache(pq_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database_file = pq_store / snapshot.read_manifest(pq_store).vectors_file  # the re-rank's vector file
    vector_bytes = COUNT * DIM * np.dtype(vector_file.ROW_DTYPE).itemsize
    with Store.open(pq_store) as store:
        _drop_from_cache(database_file)
        stopped = threading.Event()
        stopped.set()
        assert store.vectors.warm_vectors(stopped) == 0  # asked to stop: reads nothing
        with monkeypatch.context() as patched:
            patched.setattr(vector_rows, "WARM_SHARE", 0.0)  # a table larger than the memory left: left alone
            assert store.vectors.warm_vectors(threading.Event()) == 0
        before = _cached_bytes(database_file)  # its header and ids, read when it was opened
        assert store.vectors.warm_vectors(threading.Event()) == COUNT
        assert _cached_bytes(database_file) >= before + vector_bytes * 9 // 10


def test_only_an_ivf_pq_store_warms_its_vectors(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store", create=True, writable=True) as store:
        store.bind_model(ModelRecord("synthetic", "r1", DIM, "3"))
        fill(store, clustered(50, 5))
        assert store.vectors.warm_vectors(threading.Event()) == 0  # a flat index never reads them back
