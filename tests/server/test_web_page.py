"""The page's second wave in a real headless Chromium against a uvicorn server on loopback, over a store
of 48 images with a sidecar and a split: the URL keeps the query and filters (bookmark, back button),
paging past 40, grouping, lists with counts, captions, the uploaded image beside its results, the detail
panel (every field, the model input, the explanation overlay), "more like these" and split counts."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.api_fixtures import running_server
from tests.browser import chromium
from tests.server.page_store import IMAGES, labelled_store
from tests.server.test_web import _wait_for_thumbnails

pytestmark = pytest.mark.needs("chromium", "playwright")
VIEWER = "https://viewer.example/view?study={study_instance_uid}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Iterator[tuple[str, Path]]:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    root = tmp_path_factory.mktemp("web-page")
    store = labelled_store(root, tiny_embedder)
    os.environ["MEDSEARCH_VIEWER_URL"] = VIEWER
    try:
        with running_server(create_app(store, embedder=tiny_embedder, settings=ServerSettings())) as base:
            yield base, root / "images"
    finally:
        del os.environ["MEDSEARCH_VIEWER_URL"]


@pytest.fixture
def browser(server: tuple[str, Path], tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as context:
        page = context.new_page()
        page.goto(server[0] + "/")
        page.wait_for_selector(f"#status:has-text('{IMAGES} images indexed')")
        page.wait_for_selector("#facets select[data-column='finding']")
        yield page


def until(page: Any, check: Callable[[], Any], what: str, seconds: float = 120.0) -> Any:
    """Poll ``check`` from here (the page's CSP forbids the eval of wait_for_function) until it is truthy."""
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)
    return value


def card_ids(page: Any) -> list[int]:
    return [int(i) for i in page.locator("#grid .card").evaluate_all("cs => cs.map(c => c.dataset.id)")]


def api(base: str, path: str, **params: Any) -> Any:
    return httpx.get(base + path, params=params, timeout=60).json()


def search(page: Any, text: str, count: int) -> list[int]:
    page.fill("#q", text)
    page.press("#q", "Enter")
    until(page, lambda: page.locator("#grid .card").count() == count and "Searching" not in page.inner_text("#status"),
          f"{count} cards")
    return card_ids(page)


def loaded(page: Any, selector: str) -> bool:
    return bool(page.locator(selector).evaluate("i => i.complete && i.naturalWidth > 0 && i.src.startsWith('blob:')"))


def test_lists_with_counts_and_an_example_of_a_real_column(browser: Any, server: tuple[str, Path]) -> None:
    facets = api(server[0], "/api/facets")
    options = browser.locator("#facets select[data-column='finding'] option").all_inner_texts()
    assert options[1:] == ["square (30)", "round (15)"]
    assert browser.locator("#facets select").count() == len(facets["columns"])
    example = browser.get_attribute("#f-where", "placeholder").split("e.g.")[1].split()[0]
    assert example in facets["columns"]
    browser.select_option("#facets select[data-column='body-site']", "left")  # a name that needs quotes
    expected = api(server[0], "/api/search", q="a round shape", k=40, where='"body-site" = \'left\'')["results"]
    assert len(expected) == 12 and search(browser, "a round shape", 12) == [r["id"] for r in expected]
    for width in (1280, 760):  # the filter row wraps; nothing runs off the page
        browser.set_viewport_size({"width": width, "height": 860})
        assert browser.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_url_keeps_query_and_filters_paging_and_back(browser: Any, server: tuple[str, Path]) -> None:
    base = server[0]
    first = search(browser, "a round shape", 40)
    assert browser.is_visible("#more")
    browser.click("#more")
    until(browser, lambda: browser.locator("#grid .card").count() == IMAGES, "the second page")
    everything = card_ids(browser)
    assert everything[:40] == first and len(set(everything)) == IMAGES and browser.is_hidden("#more")
    assert everything == [r["id"] for r in api(base, "/api/search", q="a round shape", k=IMAGES)["results"]]

    browser.select_option("#facets select[data-column='finding']", "round")
    rounds = search(browser, "a round shape", 15)
    expected = api(base, "/api/search", q="a round shape", k=40, where="finding = 'round'")["results"]
    assert rounds == [r["id"] for r in expected]
    query = parse_qs(urlparse(browser.url).query)
    assert query["q"] == ["a round shape"] and query["f.finding"] == ["round"]

    browser.go_back()  # the unfiltered search again, its controls restored
    until(browser, lambda: card_ids(browser) == first, "the first search after Back")
    assert browser.input_value("#facets select[data-column='finding']") == ""
    browser.go_forward()
    until(browser, lambda: card_ids(browser) == rounds, "the filtered search after Forward")
    assert browser.input_value("#facets select[data-column='finding']") == "round"
    browser.go_back()
    browser.go_back()  # the page as first opened: no query, no results
    until(browser, lambda: browser.locator("#grid .card").count() == 0, "no results before the first search")
    assert browser.input_value("#q") == ""
    browser.go_forward()
    browser.go_forward()
    until(browser, lambda: card_ids(browser) == rounds, "the filtered search after Forward twice")

    bookmarked = browser.url
    browser.goto("about:blank")
    browser.goto(bookmarked)
    until(browser, lambda: card_ids(browser) == rounds, "the bookmarked search")
    assert browser.input_value("#q") == "a round shape"


def test_groups_and_captions(browser: Any, server: tuple[str, Path]) -> None:
    browser.select_option("#group-by", "study")
    ids = search(browser, "a round shape", 40)
    expected = api(server[0], "/api/search", q="a round shape", k=40, group_by="study")["results"]
    assert ids == [r["id"] for r in expected]
    groups = browser.locator("#grid .card .group").all_inner_texts()
    for text, result in zip(groups, expected, strict=True):
        key = result["group"]["key"] or "(alone)"
        assert text == f"study: {key} · {result['group']['size']} image{'' if result['group']['size'] == 1 else 's'}"
    captions = browser.locator("#grid .card .meta").all_inner_texts()
    assert max(len(c) for c in captions) <= 40  # not the 60-character file name
    for caption, result in zip(captions, expected, strict=True):
        if "modality" in result["metadata"]:
            assert caption.startswith(result["metadata"]["modality"])
    browser.select_option("#caption", "path")
    assert browser.locator("#grid .card .meta").all_inner_texts()[0] == Path(expected[0]["path"]).name[:24]


def test_detail_shows_every_field_the_model_input_and_the_explanation(browser: Any, server: tuple[str, Path],
                                                                      tiny_embedder: Any) -> None:
    base = server[0]
    search(browser, "a round shape", 40)
    dicom = next(r for r in api(base, "/api/search", q="a round shape", k=40)["results"] if "modality" in r["metadata"])
    browser.click(f"#grid .card[data-id='{dicom['id']}']")
    until(browser, lambda: browser.get_attribute("#pane-main", "data-drawn") == str(dicom["id"]), "the viewer")
    browser.click("#model-box summary")  # the model's input is fetched when asked for
    until(browser, lambda: loaded(browser, "#model-img"), "the model input")
    side = tiny_embedder.preprocessor.size
    assert browser.locator("#model-img").evaluate("i => [i.naturalWidth, i.naturalHeight]") == [side, side]
    item = api(base, f"/api/items/{dicom['id']}")
    until(browser, lambda: browser.locator("#detail-meta tr").count() > 2, "the metadata")
    shown = dict(zip(browser.locator("#detail-meta td:first-child").all_inner_texts(),
                     browser.locator("#detail-meta td:nth-child(2)").all_inner_texts(), strict=True))
    for group in (value for value in item.values() if isinstance(value, dict)):  # metadata, sidecar/label fields
        for name, value in group.items():
            assert shown[name] == str(value), name
    assert browser.get_attribute("#viewer", "href") == VIEWER.format(**item["metadata"])
    assert browser.is_visible("#viewer")

    browser.check("#explain")
    until(browser, lambda: browser.get_attribute("#detail", "data-heatmap") == str(dicom["id"]), "the explanation")
    assert "not a finding" in browser.inner_text("#heat-legend")
    if os.environ.get("MEDSEARCH_SCREENSHOT_DIR"):  # to look at the page after a run
        browser.screenshot(path=str(Path(os.environ["MEDSEARCH_SCREENSHOT_DIR"]) / "page-detail.png"))
    browser.select_option("#lang", "ko")
    until(browser, lambda: "소견이 아닙니다" in browser.inner_text("#heat-legend"), "the Korean note")

    assert browser.is_visible("#more")
    browser.wait_for_selector("#similar .card")
    browser.click("#similar .card")  # similar cases are not a page of the search: no "more"
    until(browser, lambda: browser.locator("#grid .card").count() == 7, "the similar cases")
    assert browser.is_hidden("#more") and browser.is_hidden("#detail")  # the panel follows: closed


def test_upload_is_shown_beside_results_and_uses_the_filters(browser: Any, server: tuple[str, Path]) -> None:
    base, images = server
    browser.select_option("#facets select[data-column='finding']", "round")
    browser.set_input_files("#file", str(images / "case003.png"))
    until(browser, lambda: loaded(browser, "#upload-img") and browser.locator("#grid .card").count() > 0,
          "the upload and its results")
    assert browser.inner_text("#upload-name") == "case003.png"
    rounds = {r["id"] for r in api(base, "/api/search", q="x", k=40, where="finding = 'round'")["results"]}
    with open(images / "case003.png", "rb") as upload:
        direct = httpx.post(base + "/api/similar?k=40", files={"file": upload},
                            data={"where": "finding = 'round'"}, timeout=60).json()["results"]
    assert {r["id"] for r in direct} <= rounds
    assert set(card_ids(browser)) == rounds


def test_basket_more_like_these_and_split_counts(browser: Any, server: tuple[str, Path]) -> None:
    counts = api(server[0], "/api/splits/split")["images"]
    assert browser.inner_text("#splits") == "Splits: split: " + " · ".join(f"{k} {v}" for k, v in counts.items())
    chosen = search(browser, "a round shape", 40)[:3]
    _wait_for_thumbnails(browser)
    for _ in range(3):
        browser.keyboard.press("b")
        browser.keyboard.press("ArrowRight")
    assert browser.inner_text("#basket-count") == "3"
    browser.click("#more-like")
    until(browser, lambda: "AUC" in browser.inner_text("#status"), "the probe")
    more = card_ids(browser)
    assert len(more) == 40 and not set(more) & set(chosen)
    probabilities = [float(s.split("p=")[1]) for s in browser.locator("#grid .card .score").all_inner_texts()]
    assert probabilities == sorted(probabilities, reverse=True)
