"""SIGKILL during `medsearch reindex` at the two moments that matter: before any snapshot is written,
and between the replacement of index.faiss and the write of index.json. The new type is recorded only
after its snapshot is whole, so either way the store keeps its old type: it opens, serves an index of
that type that equals the database, answers searches correctly, and the next writer's snapshot is clean."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.storage import snapshot, vectors
from medsearch.storage.check import check_store
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.store import Store

# Runs `store.vectors.reindex` in a fresh process that kills itself (SIGKILL) at the chosen point.
KILLER = r"""
import os, signal, sys
from medsearch.storage import snapshot
from medsearch.storage.store import Store

point, store, kind = sys.argv[1], sys.argv[2], sys.argv[3]
real_fsync_write, real_save = snapshot._fsync_write, snapshot.save_snapshot

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def fsync_write(target, *args, **kwargs):
    if point == "before-manifest" and target.name == snapshot.MANIFEST_FILE:
        die()
    return real_fsync_write(target, *args, **kwargs)

def save_snapshot(*args, **kwargs):
    if point == "before-snapshot":
        die()
    return real_save(*args, **kwargs)

snapshot._fsync_write, snapshot.save_snapshot = fsync_write, save_snapshot
Store.open(store, writable=True).vectors.reindex(kind)
"""


@pytest.mark.parametrize("kind", ["hnsw", "ivf-pq"])
@pytest.mark.parametrize("point", ["before-snapshot", "before-manifest"])
def test_kill_during_reindex(flat_store: Path, tiny_embedder: Any, point: str, kind: str) -> None:
    manifest_before = (flat_store / snapshot.MANIFEST_FILE).read_text()
    done = subprocess.run([sys.executable, "-c", KILLER, point, str(flat_store), kind], capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (flat_store / snapshot.MANIFEST_FILE).read_text() == manifest_before, "killed before the manifest"
    with Medsearch(Store.open(flat_store), embedder=tiny_embedder) as reader:
        index = reader.store.vectors.index()
        assert index_type_of(index) == "flat" == reader.store.info().index_type
        assert sorted(vectors.ids(index).tolist()) == list(range(1, 13))
        assert all(reader.similar(image_id, k=1, include_self=True)[0].id == image_id for image_id in range(1, 13))
        assert len(reader.search("a chest x-ray", k=20)) == 12
        assert {p.kind for p in check_store(reader.store).problems} <= {"snapshot", "temporary_file"}
    with Store.open(flat_store, writable=True) as writer:
        writer.vectors.save_snapshot()
        assert not check_store(writer).problems
