"""A process killed mid-run keeps every batch it committed, and a re-run finishes the job without
re-embedding them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_png


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("select count(*) from images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "images"
    for seed in range(150):
        write_png(folder / f"img{seed:03d}.png", seed, size=(64, 64))
    store = tmp_path / "store"
    command = [sys.executable, "-m", "medsearch.cli", "index", str(folder), "--store", str(store), "--model",
               str(tiny_model), "--workers", "0", "--json", "--batch-size"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen([*command, "1"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(store / "medsearch.db") < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = _count(store / "medsearch.db")
    assert 5 <= committed < 150, "the run was not killed mid-way"

    with sqlite3.connect(store / "medsearch.db") as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    # batches of one were for the kill to land mid-run; the re-run goes in batches of 16
    done = subprocess.run([*command, "16"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == 150 - committed
    assert report["unchanged"] == committed
    info = json.loads(subprocess.run([sys.executable, "-m", "medsearch.cli", "info", "--store", str(store), "--json"],
                                     env=env, capture_output=True, text=True, timeout=120).stdout)
    assert info["images"] == 150 and info["snapshot_generation"] == info["generation"]
