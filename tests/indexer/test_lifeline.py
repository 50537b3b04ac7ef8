"""A SIGKILLed ``index`` run leaves no process behind: its forkserver, decoding workers and resource
tracker all end once it is gone (``medsearch.indexer.lifeline``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_png


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process /proc lists now."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:  # ended meanwhile
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) "
            table[int(entry)] = (int(fields[1]), fields[19])
    return table


def descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every descendant of ``pid``: the start time tells a reused pid apart."""
    table, found, frontier = _processes(), set(), {pid}
    while frontier:
        children = {child for child, (parent, _start) in table.items() if parent in frontier}
        found |= {(child, table[child][1]) for child in children}
        frontier = children
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    table = _processes()
    return {(pid, start) for pid, start in processes if pid in table and table[pid][1] == start}


def _committed(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return int(connection.execute("select count(*) from images").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_sigkilled_index_leaves_no_process_behind(tmp_path: Path, tiny_model: Path) -> None:
    folder, store = tmp_path / "images", tmp_path / "store"
    for seed in range(300):
        write_png(folder / f"img{seed:03d}.png", seed, size=(200, 160))
    run = subprocess.Popen(
        [sys.executable, "-m", "medsearch.cli", "index", str(folder), "--store", str(store), "--model",
         str(tiny_model), "--workers", "2", "--batch-size", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=Path(__file__).resolve().parents[2])
    seen: set[tuple[int, str]] = set()

    def running() -> bool:
        assert run.poll() is None, run.stderr.read() if run.stderr else run.returncode
        seen.update(descendants(run.pid))
        return _committed(store / "medsearch.db") >= 1 and len(seen) >= 4  # forkserver, tracker, 2 workers

    wait_for(running, 300, "the run's first batch and its workers")
    seen.update(descendants(run.pid))
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    wait_for(lambda: not alive(seen), 60, f"the run's processes {sorted(alive(seen))} to end")
