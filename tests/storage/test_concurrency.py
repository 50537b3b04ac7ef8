"""Readers during writes. A reader thread with its own read-only store searches without pause (text and
similar-by-id, with and without a ``where`` filter) while a real indexer process adds images and a second
one removes some. Every answer must be consistent with some generation committed while it ran: sorted by
score, no duplicate ids, ids of images that exist, as many results as min(k, images) at some moment of
the search; and the reader's in-memory index must catch up with the writer on each search. Meanwhile a
second writer is refused cleanly: StoreLocked from the API, exit code 5 and one line from the CLI."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.errors import StoreLocked
from medsearch.indexer.pipeline import IndexSettings
from medsearch.storage.store import LOCK_FILE, Store

from tests.conftest import write_png

K = 20
WIDE = 100  # images of even seed are 120 px wide, odd ones 64: the filter ``width >= 100`` keeps half
FIRST, ADDED, REMOVED = 6, 30, 14


def _counts(db: Path) -> tuple[int, int, set[int]]:
    """(images, images passing the filter, their ids) as committed now."""
    with sqlite3.connect(db, timeout=10) as connection:
        rows = connection.execute("select id, width from images").fetchall()
    return len(rows), sum(1 for _id, width in rows if width >= WIDE), {image_id for image_id, _w in rows}


class Reader(threading.Thread):
    """Searches until stopped; records every inconsistency (and any exception) in ``problems``."""

    def __init__(self, store_dir: Path, embedder: Any, anchor: int) -> None:
        super().__init__(daemon=True)
        self.db = store_dir / "medsearch.db"
        self.engine = Medsearch(Store.open(store_dir), embedder=embedder)
        self.anchor, self.stop, self.searches = anchor, threading.Event(), 0
        self.problems: list[str] = []
        self.sizes_seen: list[int] = []
        self.ever: set[int] = set()
        self.catch_ups = 0
        real_catch_up = self.engine.store.vectors.catch_up

        def counted() -> None:
            self.catch_ups += 1
            real_catch_up()

        self.engine.store.vectors.catch_up = counted  # type: ignore[method-assign]

    def run(self) -> None:
        queries: list[tuple[str, Callable[[list[str]], list[Any]]]] = [
            ("text", lambda where: self.engine.search("a chest x-ray", k=K, where=where)),
            ("similar", lambda where: self.engine.similar(self.anchor, k=K, where=where, include_self=True)),
        ]
        try:
            while not self.stop.is_set():
                for name, query in queries:
                    for where in ([], [f"width >= {WIDE}"]):
                        self._check(name, where, query)
        except Exception as error:  # the test reports it
            self.problems.append(f"{type(error).__name__}: {error}")
        finally:
            self.engine.close()

    def _check(self, name: str, where: list[str], query: Callable[[list[str]], list[Any]]) -> None:
        before = _counts(self.db)
        results = query(where)
        after = _counts(self.db)
        self.searches += 1
        self.ever |= before[2] | after[2]
        self.sizes_seen.append(int(self.engine.store.vectors._index.ntotal))
        which = 1 if where else 0
        low, high = sorted((before[which], after[which]))
        ids, scores = [r.id for r in results], [r.score for r in results]
        label = f"{name} where={where} ({len(results)} results, images {low}..{high})"
        if not min(K, low) <= len(results) <= min(K, high):
            self.problems.append(f"{label}: wrong count")
        if scores != sorted(scores, reverse=True):
            self.problems.append(f"{label}: not sorted by score")
        if len(set(ids)) != len(ids) or not set(ids) <= self.ever:
            self.problems.append(f"{label}: duplicate or unknown ids")
        if where and any(r.metadata["width"] < WIDE for r in results):
            self.problems.append(f"{label}: a result fails the filter")
        if name == "similar" and not where and results[0].id != self.anchor:
            self.problems.append(f"{label}: the anchor is not its own nearest image")


def _lock_held(store_dir: Path) -> bool:
    with open(store_dir / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _start_writer(folder: Path, store: Path, model: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDSEARCH_SNAPSHOT_EVERY_S": "0"}
    return subprocess.Popen(
        [sys.executable, "-m", "medsearch.cli", "index", str(folder), "--store", str(store), "--model", str(model),
         "--batch-size", "2", "--workers", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parents[2])


def _assert_second_writer_refused(folder: Path, store: Path, model: Path, writer: subprocess.Popen[str],
                                  cli: Callable[..., Any]) -> None:
    deadline = time.monotonic() + 30
    holder = store / LOCK_FILE  # taken first, then the pid written into it
    while not (_lock_held(store) and holder.read_text() == str(writer.pid)) and writer.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.poll() is None, "the writer ended before its lock could be tested"
    with pytest.raises(StoreLocked, match=f"pid {writer.pid}"):
        Store.open(store, writable=True)
    refused = cli("index", folder, "--store", store, "--model", model, expect=5)
    assert refused.stderr.strip().count("\n") == 0 and "is writing to" in refused.stderr, refused.stderr


def _finish(writer: subprocess.Popen[str]) -> dict[str, Any]:
    """The writer's JSON report, once it has exited successfully."""
    out, err = writer.communicate(timeout=300)  # a bound, not a wait: a loaded CI machine is slow
    assert writer.returncode == 0, err[-2000:]
    return json.loads(out)


def test_readers_during_writes(tmp_path: Path, tiny_model: Path, tiny_embedder: Any,
                               cli: Callable[..., Any]) -> None:
    folder, store = tmp_path / "images", tmp_path / "store"
    for seed in range(FIRST):
        write_png(folder / f"img{seed:03d}.png", seed, size=(120 if seed % 2 == 0 else 64, 48))
    with Medsearch.open(store, create=True, writable=True, embedder=tiny_embedder) as first:
        first.index([folder], IndexSettings(batch_size=4, workers=0))
        anchor = first.search("anything", k=1)[0].id
    for seed in range(FIRST, FIRST + ADDED):
        write_png(folder / f"img{seed:03d}.png", seed, size=(120 if seed % 2 == 0 else 64, 48))
    reader = Reader(store, tiny_embedder, anchor)
    reader.start()
    try:
        writer = _start_writer(folder, store, tiny_model)
        _assert_second_writer_refused(folder, store, tiny_model, writer, cli)
        assert _finish(writer)["added"] == ADDED
        grown = reader.searches
        for path in sorted(folder.glob("*.png"))[FIRST:FIRST + REMOVED]:
            path.unlink()
        assert _finish(_start_writer(folder, store, tiny_model))["removed"] == REMOVED
        time.sleep(0.3)
    finally:
        reader.stop.set()
        reader.join(timeout=30)
    print(f"searches: {reader.searches}; index sizes seen: {sorted(set(reader.sizes_seen))}")
    assert not reader.problems, reader.problems[:10]
    assert grown >= 8 and reader.searches > grown, (grown, reader.searches)
    assert reader.catch_ups >= reader.searches
    sizes = reader.sizes_seen
    assert sizes[0] < FIRST + ADDED and max(sizes) == FIRST + ADDED and sizes[-1] == FIRST + ADDED - REMOVED
    assert len(set(sizes)) >= 4, "the reader saw the store grow batch by batch"


def test_hits_deleted_before_they_are_read_back_are_replaced(tmp_path: Path, tiny_embedder: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer removes one of the hits between the vector search and the reading of the rows: the page
    still holds k results, all of images that exist."""
    import medsearch.query.ranking

    folder, store = tmp_path / "images", tmp_path / "store"
    for seed in range(12):
        write_png(folder / f"img{seed:03d}.png", seed)
    with Medsearch.open(store, create=True, writable=True, embedder=tiny_embedder) as writer:
        writer.index([folder], IndexSettings(batch_size=4, workers=0))
    real_hydrate, calls = medsearch.query.ranking.hydrate, []

    def delete_first_hit_then_hydrate(opened: Store, hits: list[tuple[int, float]], *args: Any) -> Any:
        calls.append(hits)
        if len(calls) == 1:
            with sqlite3.connect(store / "medsearch.db") as connection:
                Path(connection.execute("select path from images where id = ?", (hits[0][0],)).fetchone()[0]).unlink()
            with Medsearch.open(store, writable=True, embedder=tiny_embedder) as writer:
                assert writer.index([folder], IndexSettings(workers=0)).removed == 1
        return real_hydrate(opened, hits, *args)

    monkeypatch.setattr(medsearch.query.ranking, "hydrate", delete_first_hit_then_hydrate)
    with Medsearch(Store.open(store), embedder=tiny_embedder) as reader:
        results = reader.search("a chest x-ray", k=5)
        assert len(results) == 5 and [r.rank for r in results] == [1, 2, 3, 4, 5]
        assert len(calls) == 2 and calls[0][0][0] not in [r.id for r in results]
