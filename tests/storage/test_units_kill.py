"""SIGKILL the indexing of multi-file DICOM series at random moments, several times, and prove after each
kill that the reopened store is consistent: every series and study row matches its images exactly (size
and mean vector: ``medsearch.storage.units.stale_units`` is empty), the series and study indexes hold exactly the
live units of the table, and ``check`` finds nothing but what a kill may leave for the next run (a
snapshot's temporary file, a file deleted before a run removed it). Between kills series gain slices,
lose slices and new series arrive, so that kills land while units grow, shrink and are born. A final
run finishes the job. Kills are timed by conditions (images committed, a snapshot write under way),
never by sleeping; the indexer processes are forked from a warm server (tests/indexer/test_crash_kill.py)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
from medsearch.storage import units
from medsearch.storage.check import check_store
from medsearch.storage.store import Store
from medsearch.storage.unit_models import Unit
from sqlalchemy import select

from tests.indexer.test_crash_kill import Runs, _alive, _temporaries, _wait_gone
from tests.volumes import SeriesSpec, background, uid, write_series, write_slice

KILLS = 8
LEFT = 6  # slices left to index before each kill, so that no run can finish before it is killed
LEFTOVERS = {"temporary_file", "snapshot", "missing_file"}
"""What ``check`` may find after a kill: the next run (or ``check --repair``) clears them."""


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("select count(*) from images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _indexed_paths(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
        return {row[0] for row in connection.execute("select path from images")}


def _kill_once(runs: Runs, args: list[str], db: Path, rng: random.Random) -> str:
    """Start an indexing run and SIGKILL it at a moment chosen by condition; say which."""
    before, stale = _committed(db), _temporaries(db.parent)
    out = db.parent.parent / "run.out"
    out.with_name("run.out.rc").unlink(missing_ok=True)
    pid = runs.start(args, out)
    deadline, moment = time.monotonic() + 120, rng.random()
    if moment < 0.15:
        stage = "startup"  # killed as soon as it exists: loading, discovery
    elif moment < 0.4:
        stage = "snapshot"
        while not _temporaries(db.parent) - stale and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.001)  # polling for the condition: a snapshot write under way
    else:
        stage, wanted = "batches", before + rng.randint(1, LEFT - 1)
        while _committed(db) < wanted and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.002)  # polling for the condition: that many images committed
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    return "finished" if out.with_name("run.out.rc").exists() else stage


def _assert_consistent(store_dir: Path, finished: bool) -> None:
    """The units match their images, both unit indexes match the table, ``check`` finds no more than
    a kill's leftovers (nothing at all once a run finished)."""
    db = store_dir / "medsearch.db"
    if not db.exists():
        return
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone()[0] == "ok"
    with Store.open(store_dir) as store:
        if store.model_record() is None:
            return  # killed before the first batch: nothing committed
        assert units.stale_units(store) == []
        for kind in units.KINDS:
            with store.read_session() as session:
                live = set(session.scalars(select(Unit.id).where(Unit.kind == kind, Unit.size > 0)))
            assert set(store.unit_vectors.ids(kind).tolist()) == live, kind
        kinds = {p.kind for p in check_store(store).problems}
        assert kinds <= (set() if finished else LEFTOVERS), kinds


class Volumes:
    """A folder of DICOM series that grows and shrinks between runs."""

    def __init__(self, folder: Path, rng: random.Random) -> None:
        self.folder, self.rng = folder, rng
        self.pixels = np.random.default_rng(rng.randrange(2**32))
        self.specs: list[SeriesSpec] = []
        self.slices: dict[str, int] = {}

    def new_series(self, slices: int) -> None:
        number = len(self.specs)
        spec = SeriesSpec(uid("kill-series", number), uid("kill-study", number // 2), "K1",
                          f"2020{1 + number % 12:02d}01", "red_circle" if number % 2 else None)
        self.specs.append(write_series(self.folder, spec, slices, 2, self.pixels))
        self.slices[spec.series_uid] = slices

    def add_slice(self) -> None:
        spec = self.rng.choice(self.specs)
        self.slices[spec.series_uid] += 1
        number = self.slices[spec.series_uid]
        write_slice(self.folder / spec.series_uid / f"{number - 1:03d}.dcm", background(self.pixels), spec, number)

    def remove_slice(self) -> None:
        files = sorted(self.folder.glob("*/*.dcm"))
        if len(files) > 1:
            self.rng.choice(files).unlink()

    def files(self) -> set[str]:
        return {str(path.resolve()) for path in self.folder.glob("*/*.dcm")}


def test_sigkill_while_indexing_series_at_random_moments(tmp_path: Path, tiny_model: Path) -> None:
    rng = random.Random(17017)
    volumes = Volumes(tmp_path / "dicom", rng)
    for _ in range(3):
        volumes.new_series(6)
    store_dir = tmp_path / "store"
    db = store_dir / "medsearch.db"

    def args() -> list[str]:
        return ["index", str(volumes.folder), "--store", str(store_dir), "--model", str(tiny_model), "--json",
                "--batch-size", str(rng.choice([1, 2, 3])), "--workers", "0"]

    runs = Runs({**os.environ, "HF_HUB_OFFLINE": "1"})
    stages: dict[str, int] = {}
    try:
        for kill in range(KILLS):
            if kill:
                volumes.add_slice()
                volumes.remove_slice()
            while len(volumes.files() - _indexed_paths(db)) < LEFT:
                volumes.new_series(rng.randint(3, 6))
            stage = _kill_once(runs, args(), db, rng)
            stages[stage] = stages.get(stage, 0) + 1
            _assert_consistent(store_dir, finished=False)
        out = tmp_path / "final.out"
        _wait_gone(runs.start(args(), out))
    finally:
        runs.close()
    print(f"kills by stage: {stages}")
    assert out.with_name("final.out.rc").read_text() == "0", out.read_text()
    assert json.loads(out.read_text())["failed"] == 0
    assert sum(n for stage, n in stages.items() if stage != "finished") >= KILLS - 1 and stages.get("batches", 0) >= 3
    _assert_consistent(store_dir, finished=True)
    with Store.open(store_dir) as store:
        assert _indexed_paths(db) == volumes.files()
        on_disk = {path.parent.name for path in volumes.folder.glob("*/*.dcm")}
        assert store.unit_vectors.count("series") == len(on_disk)
