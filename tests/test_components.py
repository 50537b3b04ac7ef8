"""A missing real component skips its tests on a developer's machine and fails them under ``CI=true``
(``tests/components.py``), and a nested pytest run is killed, whole, past its time limit
(``tests/indexer/netns.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.indexer import netns

ROOT = Path(__file__).resolve().parents[1]
BROWSER_MODULE = "tests/server/test_web.py"


def _pytest_without_chromium(ci: str) -> subprocess.CompletedProcess[str]:
    """``BROWSER_MODULE`` run as ``.ci/run`` runs the suite, with Chromium pointed at a path that is not there
    (the shared machine's own Chromium stays installed)."""
    env = {**os.environ, "CI": ci, "MEDSEARCH_CHROMIUM": "/nonexistent/chromium"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", BROWSER_MODULE],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_without_chromium_the_browser_tests_fail_under_ci() -> None:
    run = _pytest_without_chromium("true")
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 1, run.stdout[-3000:]
    assert "error" in summary and "passed" not in summary and "skipped" not in summary, summary  # at setup
    assert "CI=true and chromium is missing" in run.stdout


def test_without_chromium_the_browser_tests_skip_outside_ci() -> None:
    run = _pytest_without_chromium("")
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout[-3000:]
    assert "skipped" in summary and "failed" not in summary and "passed" not in summary, summary


def test_a_nested_run_past_its_limit_is_killed_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    monkeypatch.setattr(netns, "TIMEOUT_S", 2.0)
    command = ["bash", "-c", f"sleep 300 & echo $! > {pid_file}; wait"]
    with pytest.raises(pytest.fail.Exception, match="took over 2 s"):
        netns._run(command, dict(os.environ))
    grandchild = int(pid_file.read_text())
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]
