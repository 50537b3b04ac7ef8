"""Run the Ray tests (``test_ray_executor.py``) inside a private network namespace, where the local Ray,
which listens on every interface, is reachable from loopback only (``tests/indexer/netns_run.sh``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.indexer.test_dicomweb_netns import _can_unshare

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_ray_suite_in_a_private_network_namespace() -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Data is not installed (pip install 'medsearch[ray]')")
    if not _can_unshare():
        pytest.skip("cannot create a network namespace here (needs root or CAP_SYS_ADMIN)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["bash", str(ROOT / "tests/indexer/netns_run.sh"), sys.executable, "-m", "pytest",
               str(ROOT / "tests/indexer/test_ray_executor.py"), "-q", "-p", "no:cacheprovider", "-rs"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "passed" in summary and "skipped" not in summary, summary
