"""Run the Orthanc tests (``test_dicomweb_orthanc.py``) inside a private network namespace, where Orthanc,
which listens on every interface, is reachable from loopback only. The client must be in the same
namespace, so the whole module runs there, in its own pytest process, through ``tests/indexer/netns_run.sh``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.indexer.orthanc import orthanc_installed

ROOT = Path(__file__).resolve().parents[2]


def _can_unshare() -> bool:
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_orthanc_suite_in_a_private_network_namespace() -> None:
    if not orthanc_installed():
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    if not _can_unshare():
        pytest.skip("cannot create a network namespace here (needs root or CAP_SYS_ADMIN)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = ["bash", str(ROOT / "tests/indexer/netns_run.sh"), sys.executable, "-m", "pytest",
               str(ROOT / "tests/indexer/test_dicomweb_orthanc.py"), "-q", "-p", "no:cacheprovider", "-rs"]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "passed" in summary and "skipped" not in summary, summary
