"""Run a test module in its own pytest process inside a private network namespace whose only interface is
loopback (``netns_run.sh``), for servers that listen on every interface (Orthanc, Ray)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.components import require

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = float(os.environ.get("MEDSEARCH_NESTED_TIMEOUT_S") or 1200)
"""How long a nested pytest run may take before it is killed, whole (a hung server or Ray fails the test
instead of the CI job's own limit)."""


def run_in_netns(*modules: str) -> None:
    """Run ``modules`` (paths under the repository) in one pytest process in the namespace; fail unless they
    passed whole, with nothing skipped, within ``TIMEOUT_S``. Skips when no namespace can be made here
    (needs root or CAP_SYS_ADMIN), fails then under CI (``tests.components``)."""
    require("netns")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["bash", str(ROOT / "tests/indexer/netns_run.sh"), sys.executable, "-m", "pytest",
               *(str(ROOT / module) for module in modules), "-q", "-p", "no:cacheprovider", "-rs"]
    run = _run(command, env)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "passed" in summary and "skipped" not in summary, summary


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a session of its own; past ``TIMEOUT_S`` kill the session (the nested pytest and
    every server it started) and fail."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"the nested run took over {TIMEOUT_S:.0f} s (MEDSEARCH_NESTED_TIMEOUT_S):\n"
                    f"{stdout[-4000:]}{stderr[-2000:]}", pytrace=False)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
