"""Debian's Chromium driven by Playwright, for the page tests: where it is, and a browser context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.components import chromium_path, require

CHROMIUM = str(chromium_path())
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000
"""How long a page test waits for a condition: Playwright's 30 s ran out once beside a CPU-bound process
on 2 cores (the first search's thumbnails); a wait ends as soon as its condition holds."""


@contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[Any]:
    """A headless Chromium context (a fresh profile in ``profile``, 1280 x 860, waits of up to
    ``TIMEOUT_MS``), closed afterwards;
    ``options`` go to Playwright's ``launch_persistent_context``. Skips the test without Playwright or
    Chromium, fails it under CI (``tests.components``)."""
    require("playwright")
    require("chromium")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 860}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()
