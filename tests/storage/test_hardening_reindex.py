"""Issue 15, item 6: a `reindex` killed (a real SIGKILL, sent by this test once the child has reached the
chosen moment and said so with a file) never leaves a store whose database and snapshot disagree about
the index type while `check` calls it healthy; readers keep the old index until the new one is whole."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medsearch.storage import snapshot
from medsearch.storage.check import check_store
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.models import StoreInfo
from medsearch.storage.store import Store
from sqlalchemy import update

# `store.vectors.reindex("hnsw")` in a child that announces the moment (a file) and waits there to be killed.
PAUSED = r"""
import pathlib, sys, time
from medsearch.storage import snapshot
from medsearch.storage.store import Store

point, store, reached = sys.argv[1:4]
real_save = snapshot.save_snapshot

def wait_to_be_killed():
    pathlib.Path(reached).touch()
    while True:
        time.sleep(0.05)

def save_snapshot(*args, **kwargs):
    if point == "before-snapshot":
        wait_to_be_killed()
    manifest = real_save(*args, **kwargs)
    wait_to_be_killed()  # "after-snapshot": the new snapshot is whole, its type not yet recorded

snapshot.save_snapshot = save_snapshot
Store.open(store, writable=True).vectors.reindex("hnsw")
"""


def _kill_at(point: str, store: Path) -> None:
    reached = store.parent / f"{point}.reached"
    child = subprocess.Popen([sys.executable, "-c", PAUSED, point, str(store), str(reached)],
                             cwd=Path(__file__).resolve().parents[2])
    try:
        while not reached.exists():
            assert child.poll() is None, "the reindex ended before the chosen moment"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        child.kill()


@pytest.mark.parametrize(("point", "served"), [("before-snapshot", "flat"), ("after-snapshot", "hnsw")])
def test_a_killed_reindex_keeps_the_old_type_and_readers_never_rebuild(flat_store: Path, point: str,
                                                                       served: str) -> None:
    _kill_at(point, flat_store)
    with Store.open(flat_store) as reader:
        info = reader.info()
        assert info is not None and info.index_type == "flat"  # the switch was never recorded
        assert index_type_of(reader.vectors.index()) == served  # the snapshot on disk, as it is
        kinds = {problem.kind for problem in check_store(reader).problems}
    assert kinds == (set() if point == "before-snapshot" else {"index_type"})
    with Store.open(flat_store, writable=True) as writer:
        assert check_store(writer, repair=True).ok
        assert not check_store(writer).problems


def test_check_notices_a_database_and_snapshot_of_different_types(flat_store: Path) -> None:
    """What a reindex killed under the old order left: the database says hnsw, the snapshot is flat."""
    with Store.open(flat_store, writable=True) as store, store.write_session() as session:
        session.execute(update(StoreInfo).values(index_type="hnsw"))
    with Store.open(flat_store) as reader:
        problems = [p for p in check_store(reader).problems if p.kind == "index_type"]
        assert problems and "hnsw" in problems[0].message and problems[0].repairable
    with Store.open(flat_store, writable=True) as writer:
        assert check_store(writer, repair=True).ok
        record = writer.model_record()
        assert record is not None
        loaded = snapshot.load_snapshot(flat_store, record.dim, record.revision)
        assert loaded is not None and loaded[1].index_type == "hnsw"
        assert not check_store(writer).problems
