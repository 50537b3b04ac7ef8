"""The page's unit switch and timeline panel in a real headless Chromium against a uvicorn server on
loopback, over the synthetic volume store (real DICOM series, the tiny trained SigLIP) plus one PNG
without a patient: the switch turns the cards into series or studies (the same as ``/api/search?unit=``),
the detail panel lists the patient's studies oldest first, and shows nothing for an image without one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pytest

from tests.api_fixtures import running_server
from tests.browser import chromium
from tests.server.test_web_page import until

pytestmark = pytest.mark.needs("chromium", "playwright")
QUERY = "a red circle"


@pytest.fixture(scope="module")
def server(volumes: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The volume store copied, with a PNG (no patient) added; a server over it."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings
    from medsearch.storage import queries

    from tests.tiny_siglip import draw_class_image

    root = tmp_path_factory.mktemp("units-page")
    store = root / "store"
    shutil.copytree(volumes["store"], store, ignore=shutil.ignore_patterns("*.lock"))
    png = root / "png" / "red.png"
    png.parent.mkdir()
    draw_class_image("red_circle", np.random.default_rng(7)).save(png)
    with Medsearch.open(store, writable=True, embedder=volumes["embedder"]) as ms:
        ms.index([png.parent], IndexSettings(workers=0))
        png_id = queries.ids_of_path(ms.store, str(png.resolve()))[0]
    with running_server(create_app(store, embedder=volumes["embedder"], settings=ServerSettings())) as base:
        yield {"base": base, "png": png, "png_id": png_id, "images": 12 * len(volumes["specs"]) + 1}


@pytest.fixture
def page(server: dict[str, Any], tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as context:
        tab = context.new_page()
        tab.goto(server["base"] + "/")
        tab.wait_for_selector(f"#status:has-text('{server['images']} images indexed')")
        yield tab


def api(server: dict[str, Any], path: str, **params: Any) -> Any:
    return httpx.get(server["base"] + path, params=params, timeout=60).json()


def cards(page: Any) -> list[dict[str, str]]:
    return list(page.locator("#grid .card").evaluate_all(
        "cs => cs.map(c => ({id: c.dataset.id, unit: c.dataset.unit || '', key: c.dataset.key || '',"
        " text: c.innerText}))"))


def settled(page: Any, count: int, unit: str) -> bool:
    shown = cards(page)
    busy = "Searching" in page.inner_text("#status")
    return len(shown) == count and all(c["unit"] == unit for c in shown) and not busy


def test_the_switch_turns_the_cards_into_series_and_studies(page: Any, server: dict[str, Any]) -> None:
    page.fill("#q", QUERY)
    page.press("#q", "Enter")
    until(page, lambda: settled(page, 40, ""), "40 image cards")
    for unit, label in (("series", "12 images"), ("study", "24 images")):
        expected = api(server, "/api/search", q=QUERY, unit=unit, k=40)["results"]
        page.select_option("#unit", unit)
        until(page, partial(settled, page, len(expected), unit), f"{unit} cards")
        shown = cards(page)
        assert [c["key"] for c in shown] == [r["key"] for r in expected]
        assert [int(c["id"]) for c in shown] == [r["image_id"] for r in expected]
        assert all(label in c["text"] and "OT" in c["text"] for c in shown)
        assert parse_qs(urlparse(page.url).query)["unit"] == [unit]
    page.select_option("#unit", "")
    until(page, lambda: settled(page, 40, ""), "image cards again")


def test_the_timeline_lists_the_patients_studies_in_date_order(page: Any, server: dict[str, Any]) -> None:
    page.goto(server["base"] + "/?" + "q=" + QUERY.replace(" ", "+") + "&unit=study")
    first = api(server, "/api/search", q=QUERY, unit="study", k=1)["results"][0]
    until(page, lambda: cards(page) and cards(page)[0]["key"] == first["key"], "the study cards")
    page.click("#grid .card >> nth=0")
    box = page.locator("#timeline-box")
    until(page, lambda: box.get_attribute("data-for") == str(first["image_id"]), "the timeline's answer")
    expected = api(server, "/api/timeline", id=first["image_id"], q=QUERY)["studies"]
    entries = page.locator("#timeline li").evaluate_all(
        "ls => ls.map(l => ({study: l.dataset.study, id: Number(l.dataset.id),"
        " current: l.classList.contains('current'), text: l.innerText}))")
    assert box.is_visible() and len(entries) == len(expected) >= 2
    assert [e["study"] for e in entries] == [s["study_instance_uid"] for s in expected]
    assert [e["id"] for e in entries] == [s["image_id"] for s in expected]
    dates = [s["study_date"] for s in expected]
    assert dates == sorted(dates) and all(s["study_date"] in e["text"] for s, e in zip(expected, entries, strict=True))
    assert [e["study"] for e in entries if e["current"]] == [first["key"]]
    similar = page.locator("#similar .card")  # the detail's similar cases are studies too
    until(page, lambda: similar.count() > 0, "similar studies")
    assert set(similar.evaluate_all("cs => cs.map(c => c.dataset.unit)")) == {"study"}
    other = next(e for e in entries if not e["current"])
    page.click(f"#timeline li[data-study='{other['study']}']")  # opens that study's best image
    until(page, lambda: page.get_attribute("#detail", "data-id") == str(other["id"]), "the prior opened")


def test_no_timeline_for_an_image_without_a_patient(page: Any, server: dict[str, Any]) -> None:
    page.set_input_files("#file", str(server["png"]))
    until(page, lambda: any(c["id"] == str(server["png_id"]) for c in cards(page)), "the PNG among its similar")
    page.click(f"#grid .card[data-id='{server['png_id']}']")
    box = page.locator("#timeline-box")
    until(page, lambda: box.get_attribute("data-for") == str(server["png_id"]), "the timeline's answer")
    assert box.is_hidden() and page.locator("#timeline li").count() == 0
    page.select_option("#lang", "ko")
    assert page.inner_text("#unit option >> nth=1") == "시리즈"
