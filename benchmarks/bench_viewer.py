"""How soon a clicked result shows in the page's viewer (issue 33), in headless Chromium against a
uvicorn server on loopback: per clicked card, the time from the click to the first useful pixels on the
viewer's canvas (the card's thumbnail, drawn at once under a spinner) and to the full picture rendered by
the server from the stored values (a decode in a capped worker, the first time); and the server's time for
a picture at a new window once the frame is decoded (a window/level drag).

    PYTHONPATH=. MEDSEARCH_TEST_MODEL_CACHE=/work/model-cache python benchmarks/bench_viewer.py
    PYTHONPATH=. python benchmarks/bench_viewer.py --ct-side 512 --slices 40 --radiographs 4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from medsearch.indexer.model_loading import load_embedder

from benchmarks.radiographs import write_dicoms
from tests.api_fixtures import index_store, running_server
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import reuse_trained
from tests.server.viewer_store import write_ct
from tests.tiny_siglip import train_tiny_siglip

DRAWN = "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;" \
        " for (let i = 0; i < d.length; i += 4 * 97) if (d[i] + d[i + 1] + d[i + 2] > 30) return true; return false; }"


def clicked(page: Any, image_id: int) -> tuple[float, float]:
    """(s to the first non-black pixels, s to the full picture) after clicking card ``image_id``."""
    started = time.perf_counter()
    page.click(f"#grid .card[data-id='{image_id}']")
    first = full = None
    while full is None:
        now = time.perf_counter() - started
        if first is None and page.locator("#pane-main canvas").evaluate(DRAWN):
            first = now
        box = page.locator("#pane-main")
        if box.get_attribute("data-drawn") == str(image_id) and "loading" not in box.get_attribute("class"):
            full = now
        assert now < 60, "the picture never came"
    return first if first is not None else full, full


def browse(base: str, ids: list[int], query: str) -> list[tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_selector("#status:has-text('images indexed')")
        page.fill("#q", query)
        page.press("#q", "Enter")
        page.wait_for_selector(f"#grid .card[data-id='{ids[-1]}'] img[src^='blob:']")
        page.wait_for_timeout(500)  # the thumbnails settle: the user sees the grid, then clicks
        times = [clicked(page, image_id) for image_id in ids]
        context.close()
    return times


def rewindow(base: str, image_id: int, rounds: int = 10) -> float:
    """Median s for a picture at a new window of an image already decoded."""
    httpx.get(f"{base}/api/view/{image_id}/picture", timeout=60)
    spent = []
    for step in range(rounds):
        started = time.perf_counter()
        response = httpx.get(f"{base}/api/view/{image_id}/picture", params={"center": 40 + step, "width": 400},
                             timeout=60)
        response.raise_for_status()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct-side", type=int, default=512)
    parser.add_argument("--slices", type=int, default=24)
    parser.add_argument("--radiographs", type=int, default=4)
    parser.add_argument("--radiograph-side", type=int, default=2000)
    args = parser.parse_args()
    from medsearch.api import Medsearch
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings
    from medsearch.storage import queries

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = reuse_trained("trained", root / "model", lambda out: train_tiny_siglip(out, seed=0))
        embedder = load_embedder(str(model), device="cpu")
        ct = write_ct(root / "images" / "ct", args.slices, args.ct_side)
        cxr = write_dicoms(root / "images" / "cxr", args.radiographs, args.radiograph_side)
        index_store(root / "store", root / "images", embedder)
        with Medsearch.open(root / "store") as ms:
            ids = {kind: [queries.ids_of_path(ms.store, str(p.resolve()))[0] for p in paths]
                   for kind, paths in (("ct", ct[:6]), ("cxr", cxr))}
        with running_server(create_app(root / "store", embedder=embedder, settings=ServerSettings())) as base:
            times = browse(base, ids["ct"] + ids["cxr"], "a white cross")
            windows = {kind: rewindow(base, ids[kind][0]) for kind in ids}
    for kind, side in (("ct", args.ct_side), ("cxr", args.radiograph_side)):
        rows = times[:len(ids["ct"])] if kind == "ct" else times[len(ids["ct"]):]
        first, full = (np.median([r[i] for r in rows]) * 1000 for i in (0, 1))
        worst = max(r[0] for r in rows) * 1000
        print(f"{kind} ({side} px, {len(rows)} clicks): first pixels median {first:.0f} ms (worst {worst:.0f}), "
              f"full picture median {full:.0f} ms; a new window {windows[kind] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
