"""Run a test module in its own pytest process inside a private network namespace whose only interface is
loopback (``netns_run.sh``), for servers that listen on every interface (Orthanc, Ray)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def can_unshare() -> bool:
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return probe.returncode == 0


def run_in_netns(module: str) -> None:
    """Run ``module`` (a path under the repository) in the namespace; fail unless it passed whole, with
    nothing skipped. Skips when no namespace can be made here (needs root or CAP_SYS_ADMIN)."""
    if not can_unshare():
        pytest.skip("cannot create a network namespace here (needs root or CAP_SYS_ADMIN)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["bash", str(ROOT / "tests/indexer/netns_run.sh"), sys.executable, "-m", "pytest",
               str(ROOT / module), "-q", "-p", "no:cacheprovider", "-rs"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "passed" in summary and "skipped" not in summary, summary
