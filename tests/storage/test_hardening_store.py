"""Red-team attacks on the store (issue 15): a cached text vector must never wait on another process's
write (item 7); a full disk while the snapshot is written (item 8, a real full tmpfs)."""

from __future__ import annotations

import errno
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.errors import StoreError
from medsearch.query.textcache import TextCache
from medsearch.storage import snapshot
from medsearch.storage.check import check_store
from medsearch.storage.models import TextEmbedding
from medsearch.storage.shrink import shrink_vectors
from medsearch.storage.store import DB_FILE, ModelRecord, Store
from medsearch.storage.writes import Batch, NewImage, write_batch
from sqlalchemy import select

from tests.components import missing

HOLD_WRITE_LOCK = """
import pathlib, sqlite3, sys, time
db, locked, release = sys.argv[1:4]
connection = sqlite3.connect(db, isolation_level=None)
connection.execute("BEGIN IMMEDIATE")  # the write lock, as a CLI import-metadata holds it
pathlib.Path(locked).touch()
deadline = time.monotonic() + float(sys.argv[4])
while not pathlib.Path(release).exists() and time.monotonic() < deadline:
    time.sleep(0.01)
connection.execute("COMMIT")
"""


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    while not path.exists():
        assert process.poll() is None, "the lock holder died"
        time.sleep(0.01)


def _saved(store: Store) -> set[str]:
    with store.read_session() as session:
        return set(session.scalars(select(TextEmbedding.text)))


def test_caching_a_text_vector_never_waits_on_a_writer(tmp_path: Path, tiny_embedder: Any) -> None:
    """Another process holds SQLite's write lock and lets go only after half the busy timeout (10 s); a
    cache that waited for it would get the lock and save the text. It must not wait: the vector is kept in
    memory only, and saved by a later call once the writer is gone."""
    store = Store.open(tmp_path / "s", create=True, writable=True)
    store.bind_model(ModelRecord(tiny_embedder.model_id, tiny_embedder.revision, tiny_embedder.dim, "p"))
    cache = TextCache(store, tiny_embedder)
    vector = np.ones((1, tiny_embedder.dim), dtype=np.float32) / np.sqrt(tiny_embedder.dim)
    locked, release = tmp_path / "locked", tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(store.directory / DB_FILE), str(locked),
                               str(release), "5"])
    try:
        _wait_for(locked, holder)
        cache.add(["while writing"], vector)
        release.touch()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
    assert "while writing" in cache.memory
    assert _saved(store) == set()
    cache.add(["afterwards"], vector)
    assert _saved(store) == {"afterwards"}
    store.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB tmpfs, an empty store being 1.6 MB of 32 KB pages (root only; skipped where mounting is
    not allowed, failed under CI)."""
    yield from _tmpfs(tmp_path / "disk", "8m")


@pytest.fixture
def roomier_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 32 MB tmpfs: room for a store of a few thousand small images (root only)."""
    yield from _tmpfs(tmp_path / "disk", "32m")


def _tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        missing("mounting a tmpfs", f"root: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> None:
    """Write until the disk refuses more (ENOSPC)."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_a_full_disk_during_the_snapshot_is_one_line_and_leaves_no_temporary(small_disk: Path,
                                                                             tiny_embedder: Any) -> None:
    store = Store.open(small_disk / "store", create=True, writable=True)
    store.bind_model(ModelRecord(tiny_embedder.model_id, tiny_embedder.revision, tiny_embedder.dim, "p"))
    vectors = np.eye(64, tiny_embedder.dim, dtype=np.float32)
    write_batch(store, Batch(images=[NewImage(f"/x/{i}.png", 0, 1, 1, str(i), vectors[i]) for i in range(64)]))
    store.vectors.index()
    _fill(small_disk)
    with pytest.raises(StoreError) as raised:
        store.vectors.save_snapshot()
    message = str(raised.value)
    assert message.startswith("disk is full") and "\n" not in message
    assert sorted(p.name for p in (small_disk / "store").iterdir() if ".tmp" in p.name) == []
    (small_disk / "filler").unlink()
    store.vectors.save_snapshot()  # with room again, the same call works
    written = snapshot.snapshot_file(small_disk / "store")
    assert written is not None and written.stat().st_size > 0
    store.close()


def test_a_full_disk_during_the_compaction_leaves_the_store_as_it_was(roomier_disk: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.storage.test_ivf_pq_store import COUNT, clustered, old_store

    directory = old_store(roomier_disk, monkeypatch)
    with Store.open(directory, writable=True) as store:
        assert shrink_vectors(store).converted == COUNT  # moved (and compacted: there was room)
        more = clustered(2000, 8)
        write_batch(store, Batch(images=[NewImage(f"/x/{i}.dcm", 0, 1, 1, str(i), more[i]) for i in range(2000)]))
        write_batch(store, Batch(remove_paths=[f"/x/{i}.dcm" for i in range(2000)]))  # free pages to give back
        store.vectors.save_snapshot()
        wanted = clustered(5, 9)
        before = store.vectors.search(wanted, 10)
        _fill(roomier_disk)
        full = shrink_vectors(store, compact=True)
        assert not full.vacuumed and "full" in full.vacuum_note
        assert not list(directory.glob("*.tmp*"))
        (roomier_disk / "filler").unlink()
        after = store.vectors.search(wanted, 10)
        np.testing.assert_array_equal(after[1], before[1])
        assert check_store(store).ok
        again = shrink_vectors(store, compact=True)
        assert again.vacuumed and again.bytes_after < again.bytes_before
