"""The detail panel's viewer in a real headless Chromium against a uvicorn server on loopback, over a CT
series, a 12-bit chest radiograph and PNGs (``tests.server.viewer_store``): the canvas's RENDERED PIXELS
change with the window (preset and drag), the zoom and the heatmap overlay; the slices page in order with
their scores; the card's thumbnail shows under a spinner until the picture arrives; the panel closes on a
new search; no timeline is asked for an image without a patient; the label set follows the modality;
side by side zooms both panes and shows an uploaded query image; the words are Korean in Korean mode.
With ``MEDSEARCH_SCREENSHOT_DIR`` set, screenshots at 1400 x 900 of the CT, the radiograph and the
heatmap are written there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api_fixtures import running_server
from tests.browser import CHROMIUM, chromium
from tests.server.test_web_page import api, until
from tests.server.viewer_store import CT_SLICES, ViewerStore, viewer_store

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
VIEWER = "https://viewer.example/view?study={study_instance_uid}"
QUERY = "a white cross"
SAMPLES = """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const out = [];
  for (let gy = 0; gy < 24; gy++) for (let gx = 0; gx < 24; gx++) {
    const x = Math.floor((gx + .5) * c.width / 24), y = Math.floor((gy + .5) * c.height / 24);
    const i = (y * c.width + x) * 4; out.push([d[i], d[i + 1], d[i + 2]]); }
  return out; }"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Iterator[dict[str, Any]]:
    from medsearch.api import Medsearch
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings
    from medsearch.storage import queries

    embedder = load_embedder(str(trained_model), device="cpu")
    made: ViewerStore = viewer_store(tmp_path_factory.mktemp("viewer-page"), embedder)
    with Medsearch.open(made.store) as ms:
        ids = {path: queries.ids_of_path(ms.store, str(path.resolve()))[0]
               for path in [*made.ct, made.radiograph, *made.pngs]}
    os.environ["MEDSEARCH_VIEWER_URL"] = VIEWER
    try:
        with running_server(create_app(made.store, embedder=embedder, settings=ServerSettings())) as base:
            yield {"base": base, "ct": [ids[p] for p in made.ct], "cxr": ids[made.radiograph],
                   "pngs": [ids[p] for p in made.pngs], "images": len(ids)}
    finally:
        del os.environ["MEDSEARCH_VIEWER_URL"]


@pytest.fixture
def page(server: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as context:
        tab = context.new_page()
        tab.set_viewport_size({"width": 1400, "height": 900})
        tab.goto(server["base"] + "/")
        tab.wait_for_selector(f"#status:has-text('{server['images']} images indexed')")
        yield tab


def search(page: Any, text: str, count: int, where: str = "") -> None:
    page.fill("#f-where", where)
    page.fill("#q", text)
    page.press("#q", "Enter")
    until(page, lambda: page.locator("#grid .card").count() == count and "…" not in page.inner_text("#status"),
          f"{count} cards")


def pixels(page: Any, pane: str = "#pane-main") -> np.ndarray:
    """24 x 24 samples (RGB) of the pane's canvas as drawn now."""
    return np.asarray(page.locator(f"{pane} canvas").evaluate(SAMPLES), dtype=np.float32)


def settled(page: Any, image_id: int, window: str | None = None, pane: str = "#pane-main") -> bool:
    box = page.locator(pane)
    done = box.get_attribute("data-drawn") == str(image_id) and "loading" not in (box.get_attribute("class") or "")
    return done and (window is None or box.get_attribute("data-window") == window)


def open_card(page: Any, image_id: int, window: str | None = None) -> None:
    page.click(f"#grid .card[data-id='{image_id}']")
    until(page, lambda: settled(page, image_id, window), f"image {image_id} drawn")


def shot(page: Any, name: str) -> None:
    if os.environ.get("MEDSEARCH_SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["MEDSEARCH_SCREENSHOT_DIR"]) / name))


def test_window_level_zoom_and_slices_change_the_rendered_pixels(page: Any, server: dict[str, Any]) -> None:
    ct = server["ct"]
    search(page, QUERY, CT_SLICES, "modality = 'CT'")
    open_card(page, ct[2], "40/400")  # a CT without its own window opens at soft tissue
    soft = pixels(page)
    assert soft.max() > 200 and soft.min() < 20  # bone white, air black: a real picture, not a black square
    page.select_option("#preset", "-600,1500")
    until(page, lambda: settled(page, ct[2], "-600/1500"), "the lung window")
    lung = pixels(page)
    assert np.abs(lung - soft).mean() > 5  # the lungs (-800 HU) show grey now, black before
    shot(page, "viewer-ct.png")

    box = page.locator("#pane-main canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 60, steps=4)
    page.mouse.up()
    # the drag asks for several windows on its way; the latest asked wins, so wait for a drawn one that moved
    until(page, lambda: settled(page, ct[2]) and page.get_attribute("#pane-main", "data-window")
          not in ("-600/1500", ""), "the dragged window drawn")
    dragged = page.get_attribute("#pane-main", "data-window")
    center, width = (float(v) for v in dragged.split("/"))
    assert center > -600 and width > 1500  # down raises the level, right widens the window
    assert np.abs(pixels(page) - lung).mean() > 2

    page.click("#one")  # 1:1 -> one image pixel per screen pixel
    assert page.get_attribute("#viewer-box", "data-zoom") == "1.000"
    one = pixels(page)
    page.click("#zoom-in")
    assert float(page.get_attribute("#viewer-box", "data-zoom")) == pytest.approx(1.25, abs=1e-3)
    assert np.abs(pixels(page) - one).mean() > 2
    page.click("#fit")

    info = api(server["base"], f"/api/view/{ct[2]}", q=QUERY)
    page.focus("#panes")
    page.keyboard.press("ArrowDown")
    until(page, lambda: settled(page, ct[3], dragged), "the next slice, same window")
    assert page.get_attribute("#detail", "data-slice") == str(ct[3])
    assert f"{info['slices'][3]['score']:.3f}" in page.inner_text("#slice-text")
    assert "slice 4 / 8" in page.inner_text("#slice-text")
    page.mouse.move(x, y)
    page.mouse.wheel(0, -120)
    page.mouse.wheel(0, -120)
    until(page, lambda: settled(page, ct[1]), "two slices up by the wheel")
    assert page.get_attribute("#detail", "data-id") == str(ct[2])  # the panel still shows the opened result


def test_heatmap_overlay_toggles_over_the_full_picture(page: Any, server: dict[str, Any]) -> None:
    search(page, QUERY, server["images"])
    target = server["pngs"][4]  # the drawn white cross
    open_card(page, target)
    before = pixels(page)
    page.check("#explain")
    until(page, lambda: page.get_attribute("#detail", "data-heatmap") == str(target), "the heatmap")
    until(page, lambda: np.abs(pixels(page) - before).mean() > 5, "the overlay drawn")
    over = pixels(page)
    assert np.abs(over[:, 0] - over[:, 2]).max() > 30  # the colour map (the picture itself is grey and white)
    assert page.is_visible("#heat-legend") and "not a finding" in page.inner_text("#heat-legend")
    low, high = float(page.inner_text("#heat-low")), float(page.inner_text("#heat-high"))
    assert low < high
    shot(page, "viewer-heatmap.png")
    page.uncheck("#explain")
    until(page, lambda: np.abs(pixels(page) - before).max() < 1, "the overlay gone")
    assert page.is_hidden("#heat-legend")


def test_a_thumbnail_under_a_spinner_then_the_picture_and_the_panel_follows_the_search(
        page: Any, server: dict[str, Any]) -> None:
    search(page, QUERY, server["images"])
    target = server["cxr"]
    until(page, lambda: page.locator(f"#grid .card[data-id='{target}'] img").evaluate(
        "i => i.complete && i.naturalWidth > 0"), "the card's thumbnail")
    held: list[Any] = []
    page.route("**/api/view/*/picture*", lambda route: held.append(route))
    page.click(f"#grid .card[data-id='{target}']")
    until(page, lambda: held, "the picture asked for")
    assert "loading" in page.get_attribute("#pane-main", "class")
    assert pixels(page).max() > 100  # the card's thumbnail is drawn meanwhile, not a black square
    for route in held:
        route.continue_()
    page.unroute("**/api/view/*/picture*")
    until(page, lambda: settled(page, target, "1800/3000"), "the radiograph at its own window")
    assert page.input_value("#label-set") == "cxr-findings"
    page.wait_for_selector("#label-probs tr")
    shot(page, "viewer-radiograph.png")
    search(page, "a red circle", server["images"])
    assert page.is_hidden("#detail")


def test_no_timeline_call_without_a_patient_labels_uids_and_side_by_side(page: Any, server: dict[str, Any]) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    search(page, QUERY, CT_SLICES, "modality = 'CT'")
    best = int(page.get_attribute("#grid .card:nth-child(1)", "data-id"))
    other = int(page.get_attribute("#grid .card:nth-child(3)", "data-id"))
    open_card(page, other)
    until(page, lambda: page.get_attribute("#timeline-box", "data-for") == str(other), "the timeline decided")
    assert not [url for url in asked if "/api/timeline" in url] and page.is_hidden("#timeline-box")
    assert page.input_value("#label-set") == ""  # a CT: no chest radiograph findings by default
    assert "label set" in page.inner_text("#label-note")
    item = api(server["base"], f"/api/items/{other}")
    assert page.get_attribute("#viewer", "href") == VIEWER.format(**item["metadata"])
    page.click("#copy-uids")
    copied = page.get_attribute("#copy-uids", "data-copied")
    assert item["metadata"]["study_instance_uid"] in copied and item["metadata"]["sop_instance_uid"] in copied

    page.check("#compare")
    until(page, lambda: settled(page, best, pane="#pane-ref"), "the best match beside it")
    assert f"#{best}" in page.inner_text("#ref-label")
    before = pixels(page, "#pane-ref")
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert np.abs(pixels(page, "#pane-ref") - before).mean() > 2  # the zoom is shared


def test_side_by_side_with_the_uploaded_query_image(page: Any, server: dict[str, Any], tmp_path: Path) -> None:
    from tests.tiny_siglip import draw_class_image

    upload = tmp_path / "query.png"
    draw_class_image("white_cross", np.random.default_rng(11)).save(upload)
    page.set_input_files("#file", str(upload))
    until(page, lambda: page.locator("#grid .card").count() > 0 and "…" not in page.inner_text("#status"), "results")
    first = int(page.get_attribute("#grid .card:nth-child(1)", "data-id"))
    open_card(page, first)
    page.check("#compare")
    until(page, lambda: page.is_visible("#pane-ref") and pixels(page, "#pane-ref").max() > 100, "the upload beside it")
    assert "query.png" in page.inner_text("#ref-label")


def test_korean_mode_translates_the_viewer_and_the_filter_names(page: Any, server: dict[str, Any]) -> None:
    page.wait_for_selector("#facets select[data-column='modality']", state="attached")
    page.select_option("#lang", "ko")
    assert page.locator("#facets select[data-column='modality'] option").first.inner_text() == "모달리티: 전체"
    search(page, QUERY, CT_SLICES, "modality = 'CT'")
    open_card(page, server["ct"][0])
    until(page, lambda: "슬라이스 1 / 8" in page.inner_text("#slice-text"), "the Korean slice line")
    assert page.inner_text("#fit") == "맞춤" and page.inner_text("label:has(#compare)").strip() == "나란히 보기"
    assert [o for o in page.locator("#preset option").all_inner_texts() if o == "폐"]
    shot(page, "viewer-korean.png")
