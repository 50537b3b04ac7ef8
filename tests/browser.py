"""Debian's Chromium driven by Playwright, for the page tests: where it is, and a browser context."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("MEDSEARCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000
"""How long a page test waits for a condition: Playwright's 30 s ran out once beside a CPU-bound process
on 2 cores (the first search's thumbnails); a wait ends as soon as its condition holds."""


@contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[Any]:
    """A headless Chromium context (a fresh profile in ``profile``, 1280 x 860, waits of up to
    ``TIMEOUT_MS``), closed afterwards;
    ``options`` go to Playwright's ``launch_persistent_context``. Skips the test without Playwright."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
