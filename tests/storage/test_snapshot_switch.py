"""The snapshot switch is atomic: the content-named index file is written first, the manifest naming it
replaces the old one by a rename, old files go last. A SIGKILL between the two writes leaves the old
manifest naming its own intact file, and a reader opens it (and replays) without rebuilding."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from medsearch.storage import snapshot
from medsearch.storage.check import check_store
from medsearch.storage.store import Store
from medsearch.storage.vector_index import VectorIndex

from tests.storage.test_store import RECORD, _fill, _search_ids, _store

# Saves the snapshot in a fresh process that kills itself (SIGKILL) when the manifest is about to be written.
KILLED_BEFORE_MANIFEST = r"""
import os, signal, sys
from medsearch.storage import snapshot
from medsearch.storage.store import Store

real_fsync_write = snapshot._fsync_write

def fsync_write(target, *args, **kwargs):
    if target.name == snapshot.MANIFEST_FILE:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_fsync_write(target, *args, **kwargs)

snapshot._fsync_write = fsync_write
Store.open(sys.argv[1], writable=True).vectors.save_snapshot()
"""


def _snapshot_problems(store: Store) -> set[str]:
    """The kinds of problem ``check`` finds, but the files of /x/*.png, which these stores never had."""
    return {p.kind for p in check_store(store).problems} - {"missing_file"}


def _index_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("index*.faiss"))


def test_kill_between_index_file_and_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _store(tmp_path) as store:
        _fill(store, 6)
        store.vectors.save_snapshot()
        _fill(store, 4, start=6)  # generation 2, not in the snapshot
        expected = _search_ids(store, 3)
    manifest_before = (tmp_path / snapshot.MANIFEST_FILE).read_text()
    named_before = snapshot.snapshot_file(tmp_path)
    done = subprocess.run([sys.executable, "-c", KILLED_BEFORE_MANIFEST, str(tmp_path)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert (tmp_path / snapshot.MANIFEST_FILE).read_text() == manifest_before
    assert named_before is not None and len(_index_files(tmp_path)) == 2  # killed between the two writes

    def no_rebuild(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the reader rebuilt the index")

    monkeypatch.setattr(VectorIndex, "_build", no_rebuild)
    with Store.open(tmp_path) as reader:
        assert reader.vectors.index().ntotal == 10  # the old snapshot, caught up by replay
        assert _search_ids(reader, 3) == expected
        assert _snapshot_problems(reader) == {"temporary_file"}  # the orphan
    monkeypatch.undo()
    with Store.open(tmp_path, writable=True) as writer:
        writer.vectors.save_snapshot()
        assert _snapshot_problems(writer) == set()
    assert _index_files(tmp_path) == [snapshot.snapshot_file(tmp_path).name]  # type: ignore[union-attr]


def test_a_save_leaves_one_content_named_file(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 3)
        store.vectors.save_snapshot()
        first = _index_files(tmp_path)
        _fill(store, 2, start=3)
        store.vectors.save_snapshot()
        second = _index_files(tmp_path)
    manifest = json.loads((tmp_path / snapshot.MANIFEST_FILE).read_text())
    assert len(first) == len(second) == 1 and first != second and second == [manifest["file"]]
    assert manifest["file"] == f"index.{manifest['sha256'][:16]}.faiss"


def test_format_1_snapshot_loads_and_foreign_names_do_not(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        _fill(store, 3)
        store.vectors.save_snapshot()
    manifest_path = tmp_path / snapshot.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    (tmp_path / manifest.pop("file")).rename(tmp_path / snapshot.INDEX_FILE)  # as format 1 wrote it
    manifest_path.write_text(json.dumps({**manifest, "format": 1}))
    loaded = snapshot.load_snapshot(tmp_path, RECORD.dim, RECORD.revision)
    assert loaded is not None and loaded[0].ntotal == 3
    for foreign in ("../outside.faiss", "/etc/passwd", "index.faiss.tmp1"):
        manifest_path.write_text(json.dumps({**manifest, "file": foreign}))
        assert snapshot.load_snapshot(tmp_path, RECORD.dim, RECORD.revision) is None
