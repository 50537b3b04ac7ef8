"""SIGKILL ``medsearch remove-root`` part-way (once some of its batches have committed, as the database
shows), then: the store opens, ``check`` is clean, the FAISS index equals the database, the other root is
untouched, and running the removal again finishes it. Real CLI process, real SQLite and FAISS, a store
indexed with the tiny model plus a few thousand more files under the root being removed."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.storage import vectors
from medsearch.storage.check import check_store
from medsearch.storage.roots import REMOVE_BATCH
from medsearch.storage.store import DB_FILE, Store
from medsearch.storage.writes import Batch, NewImage, write_batch

from tests.conftest import write_png

REPO = Path(__file__).parents[2]
BULK = 10 * REMOVE_BATCH  # files added under the removed root: ten batches to remove


def _count_under(db: Path, folder: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as connection:
        return int(connection.execute("SELECT count(*) FROM images WHERE path LIKE ?", (f"{folder}/%",)).fetchone()[0])


def _add_bulk(store_dir: Path, folder: Path) -> None:
    """``BULK`` small files under ``folder/bulk`` with random unit vectors, committed as one batch."""
    rng = np.random.default_rng(7)
    with Store.open(store_dir, writable=True) as store:
        record = store.model_record()
        assert record is not None
        rows = rng.standard_normal((BULK, record.dim)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        images = []
        for number, vector in enumerate(rows):
            path = folder / "bulk" / f"{number:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(number.to_bytes(4, "little"))
            stat = path.stat()
            images.append(NewImage(str(path), 0, stat.st_size, stat.st_mtime_ns, f"{number:064x}", vector))
        write_batch(store, Batch(images=images))
        store.vectors.save_snapshot()


def _assert_consistent(store_dir: Path) -> int:
    """The store is whole: check clean, the index's ids are the database's. Returns the image count."""
    with Store.open(store_dir) as store:
        report = check_store(store)
        assert report.ok, report.as_dict()
        rows = sorted(int(i) for (i,) in sqlite3.connect(store_dir / DB_FILE).execute("SELECT id FROM images"))
        assert sorted(vectors.ids(store.vectors.index()).tolist()) == rows
        return len(rows)


def test_a_killed_remove_root_leaves_a_whole_store_and_a_rerun_finishes(cli: Any, tmp_path: Path,
                                                                      tiny_model: Path) -> None:
    gone, kept, store = (tmp_path / "gone").resolve(), (tmp_path / "kept").resolve(), tmp_path / "store"
    for seed in range(3):
        write_png(gone / f"a{seed}.png", seed)
        write_png(kept / f"b{seed}.png", 10 + seed)
    cli("index", gone, kept, "--store", store, "--model", tiny_model, "--workers", "0", "--json")
    _add_bulk(store, gone)
    db, total = store / DB_FILE, BULK + 3
    assert _count_under(db, gone) == total

    remover = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "remove-root", str(gone), "--store", str(store)],
                               cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _count_under(db, gone) == total and remover.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # polling the condition: a first batch committed
    remover.send_signal(signal.SIGKILL)
    _out, err = remover.communicate(timeout=60)
    assert remover.returncode == -signal.SIGKILL, err.decode()[-2000:]
    left = _count_under(db, gone)
    assert 0 < left < total, f"the kill did not land part-way ({left} of {total} left)"

    assert _assert_consistent(store) == left + 3
    assert str(gone) in cli("info", "--store", store, "--json")["roots"]  # still listed: run it again
    done = cli("remove-root", gone, "--store", store, "--json")
    assert done["roots"] == [str(gone)] and done["images"] == left
    assert _assert_consistent(store) == 3 and _count_under(db, gone) == 0
    assert sorted(Path(p).name for p in cli("search", "a scan", "-k", "10", "--paths", "--store", store)
                  .stdout.split()) == ["b0.png", "b1.png", "b2.png"]
