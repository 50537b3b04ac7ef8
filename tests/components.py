"""The real components some tests need (a browser, servers, tools), and the one rule for a missing one: the
test is skipped on a developer's machine, and fails when ``CI`` is set (``CI=true``, as CI services and
``.ci/run`` set it), so that a CI which lost an install step cannot stay green.

Use ``require("chromium")`` inside a test or fixture, or mark a test or module ``pytest.mark.needs("chromium")``
(``conftest.py`` calls ``require`` for each such mark before the test runs).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest


def chromium_path() -> Path:
    return Path(os.environ.get("MEDSEARCH_CHROMIUM", "/usr/bin/chromium"))


@cache
def can_unshare() -> bool:
    """Whether this process may create a network namespace (root or CAP_SYS_ADMIN, util-linux's unshare)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=60).returncode == 0


def _orthanc() -> bool:
    from tests.indexer.orthanc import orthanc_installed

    return orthanc_installed()


COMPONENTS: dict[str, tuple[Callable[[], bool], str]] = {
    "chromium": (lambda: chromium_path().exists(), "Debian's chromium (apt-get install chromium; "
                                                  "MEDSEARCH_CHROMIUM names another path)"),
    "playwright": (lambda: importlib.util.find_spec("playwright") is not None, "pip install -e '.[dev]'"),
    "postgresql": (lambda: bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")), "apt-get install postgresql"),
    "orthanc": (_orthanc, "apt-get install orthanc orthanc-dicomweb"),
    "ray": (lambda: importlib.util.find_spec("ray") is not None, "pip install 'medsearch[ray]'"),
    "tesseract": (lambda: shutil.which("tesseract") is not None, "apt-get install tesseract-ocr"),
    "netns": (can_unshare, "a private network namespace: root or CAP_SYS_ADMIN, util-linux and iproute2"),
    "fincore": (lambda: shutil.which("fincore") is not None, "util-linux's fincore"),
}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> None:
    """Skip the running test because ``what`` is missing (``how`` says how to get it); fail it under CI."""
    message = f"{what} is missing ({how})"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def require(name: str) -> None:
    """Return when component ``name`` (a key of ``COMPONENTS``) is here; else skip, or fail under CI."""
    present, how = COMPONENTS[name]
    if not present():
        missing(name, how)
