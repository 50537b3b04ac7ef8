"""The web page in a real headless Chromium (Debian's package, driven by Playwright) against a uvicorn
server on a loopback port: search, thumbnails, detail with similar cases and zero-shot labels, basket, CSV
export."""

from __future__ import annotations

import csv
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import index_store, make_images, running_server
from tests.browser import chromium

pytestmark = pytest.mark.needs("chromium", "playwright")


@pytest.fixture
def page(tmp_path: Path, tiny_embedder: Any) -> Iterator[tuple[Any, str]]:
    index_store(tmp_path / "store", make_images(tmp_path / "images", range(6)), tiny_embedder)
    app = create_app(tmp_path / "store", embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base, chromium(tmp_path / "profile", accept_downloads=True) as context:
        yield context.new_page(), base


def _wait_for_thumbnails(browser_page: Any, seconds: float = 120.0) -> None:
    """Poll from here: the page's CSP (script-src 'self') forbids the eval that wait_for_function uses."""
    loaded = "imgs => imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
    deadline = time.monotonic() + seconds
    while not browser_page.locator("#grid img").evaluate_all(loaded):
        assert time.monotonic() < deadline, "the thumbnails did not load"
        browser_page.wait_for_timeout(100)


def test_search_open_similar_basket_export(page: tuple[Any, str], tmp_path: Path) -> None:
    browser_page, base = page
    browser_page.goto(base + "/")
    browser_page.wait_for_selector("#status:has-text('9 images indexed')")
    browser_page.fill("#q", "a bright round shape")
    browser_page.press("#q", "Enter")
    browser_page.wait_for_selector("#grid .card img[src^='blob:']")
    assert browser_page.locator("#grid .card").count() == 9
    _wait_for_thumbnails(browser_page)
    browser_page.keyboard.press("ArrowRight")
    browser_page.keyboard.press("Enter")
    browser_page.wait_for_selector("#similar .card")
    assert browser_page.locator("#similar .card").count() == 6
    opened = browser_page.get_attribute("#detail", "data-id")
    _check_labels(browser_page)
    browser_page.click("#add")
    browser_page.keyboard.press("Escape")
    assert browser_page.is_hidden("#detail")
    browser_page.keyboard.press("ArrowLeft")
    browser_page.keyboard.press("b")
    assert browser_page.inner_text("#basket-count") == "2"
    browser_page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    if os.environ.get("MEDSEARCH_SCREENSHOT_DIR"):  # to look at the page after a run
        shutil.copy(tmp_path / "page.png", Path(os.environ["MEDSEARCH_SCREENSHOT_DIR"]) / "page.png")
    with browser_page.expect_download() as download:
        browser_page.click("#export")
    with open(download.value.path(), newline="") as exported:
        rows = list(csv.DictReader(exported))
    first = browser_page.get_attribute("#grid .card:nth-child(1)", "data-id")
    assert sorted(row["id"] for row in rows) == sorted([opened, first])
    assert all(row["path"] and float(row["score"]) <= 1.0 for row in rows)


def _check_labels(browser_page: Any) -> None:
    """The opened image's zero-shot labels: none for a PNG without a modality, the first built-in set
    once chosen, then labels typed by the user."""
    from medsearch.labels.labelsets import builtin_label_sets, load_label_set

    names = load_label_set(builtin_label_sets()[0]).names
    browser_page.wait_for_selector("#label-note:has-text('label set')")  # a PNG without a modality: no set chosen
    assert browser_page.input_value("#label-set") == "" and browser_page.locator("#label-probs tr").count() == 0
    browser_page.select_option("#label-set", builtin_label_sets()[0])
    browser_page.wait_for_selector("#label-probs tr")
    assert browser_page.locator("#label-probs tr").count() == len(names)
    values = [float(v) for v in browser_page.locator("#label-probs td:nth-child(3)").all_inner_texts()]
    assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values, reverse=True)
    assert "not a diagnosis" in browser_page.inner_text("#label-note")
    if os.environ.get("MEDSEARCH_SCREENSHOT_DIR"):  # to look at the detail panel after a run
        browser_page.locator("#label-note").scroll_into_view_if_needed()
        browser_page.screenshot(path=str(Path(os.environ["MEDSEARCH_SCREENSHOT_DIR"]) / "labels.png"))
    browser_page.fill("#label-text", "a round shape;a dark square")
    browser_page.press("#label-text", "Enter")
    browser_page.wait_for_selector("#label-probs tr:nth-child(2):last-child")  # exactly two rows
    assert sorted(browser_page.locator("#label-probs td:first-child").all_inner_texts()) == [
        "a dark square", "a round shape"]
    browser_page.locator("#label-text").blur()


def test_text_typed_while_the_lists_load_is_kept(page: tuple[Any, str]) -> None:
    """The facet lists arrive after the page says it is ready: what was typed by then stays and searches."""
    browser_page, base = page
    held: list[Any] = []
    browser_page.route("**/api/facets", lambda route: held.append(route))
    browser_page.goto(base + "/")
    browser_page.wait_for_selector("#status:has-text('9 images indexed')")
    browser_page.fill("#q", "a bright round shape")
    while not held:
        browser_page.wait_for_timeout(50)
    held[0].continue_()
    browser_page.wait_for_selector("#caption option[value='path']", state="attached")
    assert browser_page.input_value("#q") == "a bright round shape"
    browser_page.press("#q", "Enter")
    browser_page.wait_for_selector("#grid .card")
    assert browser_page.locator("#grid .card").count() == 9
