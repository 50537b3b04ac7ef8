"""SIGKILL the indexer at random moments, many times, and prove after each kill that the store opens,
SQLite's integrity check passes, the index served equals the database (ids, count, generation), no
committed image was embedded again, and a final run finishes the job embedding only what was missing.

Snapshots are forced after every batch (MEDSEARCH_SNAPSHOT_EVERY_S=0) so that kills land in every stage:
start-up and model loading, reading, embedding, the database transaction and the FAISS file write."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from medsearch.storage import snapshot, vectors
from medsearch.storage.check import check_store
from medsearch.storage.store import Store

from tests.conftest import write_png

KILLS_PER_STORE = 11
STORES = 2
MIN_LEFT = 10  # files left to index before each kill, so that no run can finish before it is killed

# Each indexer run is a real process, forked from a server that has imported (and only imported) torch,
# transformers and medsearch, so that a run starts in a fraction of a second instead of ~8 s.
FORK_SERVER = r"""
import json, os, signal, sys
import faiss, torch, PIL.Image, medsearch.cli, medsearch.api, medsearch.indexer.model_loading
from transformers import AutoModel, AutoProcessor, SiglipModel, SiglipProcessor
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 1); os.dup2(out, 2)
        os.environ.update(job["env"])
        try:
            medsearch.cli.app(job["args"], standalone_mode=False)
            code = 0
        except SystemExit as exit:
            code = exit.code or 0
        except BaseException:
            code = 99
        sys.stdout.flush()
        with open(job["out"] + ".rc", "w") as handle:
            handle.write(str(code))
        os._exit(int(code))
    print(pid, flush=True)
"""


class Runs:
    """Starts indexer processes through the fork server."""

    def __init__(self, env: dict[str, str]) -> None:
        self.server = subprocess.Popen([sys.executable, "-c", FORK_SERVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True, env=env)

    def start(self, args: list[str], out: Path) -> int:
        assert self.server.stdin is not None and self.server.stdout is not None
        job = {"args": args, "out": str(out), "env": {"MEDSEARCH_SNAPSHOT_EVERY_S": "0"}}
        self.server.stdin.write(json.dumps(job) + "\n")
        self.server.stdin.flush()
        return int(self.server.stdout.readline())

    def close(self) -> None:
        self.server.kill()
        self.server.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(pid)


def _rows(db: Path) -> dict[str, int]:
    """path -> id of the committed images (empty while the database does not exist yet)."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return dict(connection.execute("select path, id from images"))
    except sqlite3.OperationalError:
        return {}


def _args(folder: Path, store: Path, model: Path, rng: random.Random) -> list[str]:
    return ["index", str(folder), "--store", str(store), "--model", str(model), "--json",
            "--batch-size", str(rng.choice([1, 2])), "--workers", str(rng.choice([0, 0, 0, 0, 1]))]


def _kill_once(runs: Runs, args: list[str], db: Path, rng: random.Random) -> str:
    """Start the indexer, SIGKILL it at a moment chosen by condition (start-up, after a few more batches,
    or while a snapshot is being written), and say in which stage it died."""
    before, stale = len(_rows(db)), _temporaries(db.parent)  # left by earlier kills
    out = db.parent.parent / "run.out"
    out.with_name("run.out.rc").unlink(missing_ok=True)
    pid = runs.start(args, out)
    deadline = time.monotonic() + 120
    moment = rng.random()
    if moment < 0.15:
        time.sleep(rng.uniform(0.0, 0.3))  # start-up: model loading, discovery, plan
    elif moment < 0.35:
        while not _temporaries(db.parent) - stale and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.001)
    else:
        wanted = before + rng.randint(1, 4)
        while len(_rows(db)) < wanted and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.003)
        while _temporaries(db.parent) - stale and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.001)  # between batches, not inside a snapshot write (that is the mode above)
    tmp_seen = bool(_temporaries(db.parent) - stale)
    os.kill(pid, signal.SIGKILL)
    _wait_gone(pid)
    if out.with_name("run.out.rc").exists():
        return "finished"
    if tmp_seen or _temporaries(db.parent) - stale:
        return "faiss-write"
    return "startup" if len(_rows(db)) == before else "batches"


def _temporaries(store_dir: Path) -> set[str]:
    """The snapshot's temporary files: one that was not there before a run starts means a snapshot write of
    that run is under way."""
    names = (snapshot.INDEX_FILE, snapshot.MANIFEST_FILE)
    return {path.name for name in names for path in store_dir.glob(f"{name}.tmp*")}


def _assert_consistent(store_dir: Path, committed_before: dict[str, int],
                       finished: bool) -> tuple[dict[str, int], bool]:
    """(path -> id committed, whether the snapshot was left unusable). Killed between writing the FAISS
    file and its manifest, the snapshot is unusable (the checksum says so) and the store rebuilds the
    index from the database; whatever the stage, the index served must equal the database."""
    db = store_dir / "medsearch.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone()[0] == "ok"
    with Store.open(store_dir) as store:
        report = check_store(store)
        missing = [p.message.split(" is indexed")[0] for p in report.problems if p.kind == "missing_file"]
        assert not (finished and missing) and not any(Path(path).exists() for path in missing), missing
        kinds = {p.kind for p in report.problems if p.kind != "missing_file"}  # deleted before the run removed it
        assert kinds <= (set() if finished else {"temporary_file", "snapshot"}), report.as_dict()
        if store.model_record() is not None:
            index = store.vectors.index()
            rows = _rows(db)
            assert sorted(vectors.ids(index).tolist()) == sorted(rows.values())
            assert index.ntotal == len(rows) and store.vectors.generation() == store.generation()
    rows = _rows(db)
    kept = {path: image_id for path, image_id in committed_before.items() if Path(path).exists()}
    assert all(rows.get(path) == image_id for path, image_id in kept.items()), "a committed image was re-embedded"
    return rows, bool(kinds)


def _grow(folder: Path, rng: random.Random, start: int, count: int) -> None:
    for seed in range(start, start + count):
        write_png(folder / f"img{seed:04d}.png", seed, size=(rng.randint(32, 300), rng.randint(32, 300)))


def test_sigkill_at_random_moments(tmp_path: Path, tiny_model: Path) -> None:
    rng = random.Random(20240601)
    runs = Runs({**os.environ, "HF_HUB_OFFLINE": "1"})
    stages: dict[str, int] = {}
    try:
        for number in range(STORES):
            _kill_store(runs, tmp_path / f"images{number}", tmp_path / f"store{number}", tiny_model, rng, stages)
    finally:
        runs.close()
    survived = sum(count for stage, count in stages.items() if stage != "finished")
    print(f"kills survived: {survived}; by stage: {stages}")
    assert survived >= 20
    assert stages.get("batches", 0) >= 5 and stages.get("faiss-write", 0) >= 1


def _kill_store(runs: Runs, folder: Path, store: Path, model: Path, rng: random.Random,
                stages: dict[str, int]) -> None:
    """Kill runs into one store, growing (and shrinking) its folder; then finish the job."""
    _grow(folder, rng, 0, 30)
    files, committed = 30, {}
    for kill in range(KILLS_PER_STORE):
        if kill % 3 == 2:
            _grow(folder, rng, files, 6)
            files += 6
            (folder / f"img{rng.randrange(files):04d}.png").unlink(missing_ok=True)
        if len({str(path) for path in folder.glob("*.png")} - set(committed)) < MIN_LEFT:
            _grow(folder, rng, files, MIN_LEFT)  # a kill must find work left, however fast the run went
            files += MIN_LEFT
        stage = _kill_once(runs, _args(folder, store, model, rng), store / "medsearch.db", rng)
        committed, unusable = _assert_consistent(store, committed, finished=False)
        stage = "faiss-write" if unusable and stage == "batches" else stage
        stages[stage] = stages.get(stage, 0) + 1
    on_disk = {str(path) for path in folder.glob("*.png")}
    still_indexed = sum(1 for path in committed if path in on_disk)
    out = store.parent / "final.out"
    _wait_gone(runs.start(_args(folder, store, model, rng), out))
    assert out.with_name("final.out.rc").read_text() == "0", out.read_text()
    report = json.loads(out.read_text())
    assert report["added"] == len(on_disk) - still_indexed and report["unchanged"] == still_indexed
    final, _unusable = _assert_consistent(store, committed, finished=True)
    assert set(final) == on_disk
    assert not list(store.glob("*.tmp*")), "a finished run leaves no temporary files"
