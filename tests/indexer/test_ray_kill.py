"""A killed ``index --executor ray`` leaves no Ray process behind (gcs, raylet, dashboard and runtime-env
agents, workers and actors): the local Ray lives in a keeper's session, killed when the CLI ends however it
ends (``medsearch.indexer.distributed.local_ray``). Ray listens on every interface, so this module runs
only inside a private network namespace (``test_ray_netns.py`` starts it there)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_png
from tests.indexer.test_lifeline import alive, descendants, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") != "1",
                                reason="needs a private network namespace (run through test_ray_netns.py)")

RAY_PROCESSES = ("gcs_server", "raylet", "DashboardAgent", "RuntimeEnvAgent", "EmbedFiles")
"""Parts of the titles of the processes the test waits for before it kills the CLI."""
GONE_SECONDS = 20
"""How long the Ray processes may outlive the CLI (Ray's agents outlived a killed driver by 38-80 s)."""


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["kill", "term", "ctrl-c"])
def test_a_killed_ray_index_leaves_no_ray_process(how: signal.Signals, tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "images"
    for seed in range(200):
        write_png(folder / f"img{seed:03d}.png", seed)
    run = subprocess.Popen(
        [sys.executable, "-m", "medsearch.cli", "index", str(folder), "--store", str(tmp_path / "store"),
         "--model", str(tiny_model), "--device", "cpu", "--executor", "ray", "--batch-size", "1", "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    seen: set[tuple[int, str]] = set()
    titles: dict[int, str] = {}

    def embedding() -> bool:
        assert run.poll() is None, run.stderr.read().decode()[-3000:] if run.stderr else run.returncode
        found = descendants(run.pid)
        seen.update(found)
        titles.update({pid: _title(pid) for pid, _start in found})  # a worker's title changes with its task
        names = " ".join(titles.values())
        return all(part in names for part in RAY_PROCESSES)

    try:
        wait_for(embedding, 600, "Ray's processes and an embedding actor")
    except AssertionError:
        run.kill()
        raise AssertionError(f"not all of {RAY_PROCESSES} among {sorted(titles.values())}") from None
    os.kill(run.pid, how)
    run.wait(120)
    try:
        wait_for(lambda: not alive(seen), GONE_SECONDS, "the Ray processes to end")
    except AssertionError:
        left = alive(seen)
        for pid, _start in left:
            os.kill(pid, signal.SIGKILL)
        names = sorted(titles[pid][:90] for pid, _ in left)
        raise AssertionError(f"alive {GONE_SECONDS} s after the CLI: {names}") from None
    assert "Traceback" not in (run.stderr.read().decode() if run.stderr else "")
