"""Issue 29, item 1: burned-in text is PHI. Thumbnails and every other picture served of a file flagged
``BurnedInAnnotation = YES``, or of an image in which the detector reads text, show no legible text: the
detector itself is run on what a really running server serves. The model input is unchanged."""

from __future__ import annotations

import os
import sqlite3
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from medsearch.indexer import text_detect
from medsearch.indexer.frames import ReadOptions
from medsearch.indexer.readers import read_file
from PIL import Image, ImageDraw, ImageFont

from tests.api_fixtures import index_store, running_server
from tests.indexer.test_dicom import write_dicom

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

if not text_detect.available() or not Path(FONT).is_file():
    if os.environ.get("CI") == "true":
        raise RuntimeError("the text detector (tesserocr + tesseract-ocr) and fonts-dejavu are required in CI")
    pytest.skip("no text detector here (pip install tesserocr; apt-get install tesseract-ocr)",
                allow_module_level=True)


def radiograph(seed: int, side: int = 512) -> np.ndarray:
    """A radiograph-like uint8 picture: a bright body with two dark lungs and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    body = np.exp(-(((x - 0.5) / 0.42) ** 2 + ((y - 0.55) / 0.5) ** 2) ** 2) * 0.8
    for lung in (0.33, 0.67):
        body -= 0.35 * np.exp(-(((x - lung) / 0.13) ** 2 + ((y - 0.5) / 0.25) ** 2) ** 2)
    body += rng.normal(0, 0.02, body.shape)
    return np.round(np.clip(body, 0, 1) * 255).astype(np.uint8)


def burned(pixels: np.ndarray, lines: list[str], height: int = 30) -> np.ndarray:
    """``pixels`` with white ``lines`` written at its top left, ``height`` pixels tall."""
    picture = Image.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, height)
    for row, line in enumerate(lines):
        draw.text((12, 12 + row * int(height * 1.4)), line, fill=255, font=font)
    return np.asarray(picture)


NAME = ["BERNARD SOPHIE", "HOPITAL CARDIO LYON", "ID 48213907"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
    folder = tmp_path_factory.mktemp("images")
    write_dicom(folder / "flagged.dcm", burned(radiograph(1), NAME), Modality="US", BurnedInAnnotation="YES")
    write_dicom(folder / "unflagged.dcm", burned(radiograph(2), NAME), Modality="US")
    Image.fromarray(burned(radiograph(3), NAME)).save(folder / "scan.png")
    write_dicom(folder / "clean.dcm", radiograph(4), Modality="DX", BurnedInAnnotation="NO")
    store = tmp_path_factory.mktemp("store")
    index_store(store, folder, tiny_embedder)
    return store


def rows(store: Path) -> dict[str, tuple[int, int | None]]:
    with sqlite3.connect(store / "medsearch.db") as db:
        found = db.execute("select path, id, text_regions from images").fetchall()
    return {Path(path).name: (image_id, regions) for path, image_id, regions in found}


def words(png: bytes) -> list[str]:
    picture = np.asarray(Image.open(BytesIO(png)).convert("L"), dtype=np.float32)
    found = text_detect.find_text(picture / (65535.0 if picture.max() > 255 else 255.0))
    assert found is not None
    return [box.text for box in text_detect.text_words(found)]


def test_the_detector_reads_the_text_of_the_originals(store: Path) -> None:
    for name in ("flagged.dcm", "unflagged.dcm", "scan.png"):
        pixels = read_file(next(Path(p) for p in _paths(store) if p.endswith(name)), ReadOptions())[0].pixels
        assert text_detect.text_words(text_detect.find_text(pixels)), name  # else the checks below could not fail


def test_text_is_recorded_per_image_and_counted_in_info(store: Path, tiny_embedder: Any) -> None:
    from medsearch.api import Medsearch

    found = rows(store)
    assert found["unflagged.dcm"][1] >= 3 and found["scan.png"][1] >= 3 and found["flagged.dcm"][1] >= 3
    assert found["clean.dcm"][1] == 0
    with Medsearch.open(store, embedder=tiny_embedder) as engine:
        counts = engine.info()["burned_in_text"]
        clean = engine.search("x", k=10, where=["text_regions = 0"])
    assert counts == {"with_text": 3, "flagged": 1, "either": 3, "unchecked": 0}
    assert [Path(hit.path).name for hit in clean] == ["clean.dcm"]


def test_no_served_picture_shows_legible_text(store: Path, tiny_embedder: Any) -> None:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    found = rows(store)
    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base:
        for name in ("flagged.dcm", "unflagged.dcm", "scan.png"):
            image_id = found[name][0]
            for url, params in ((f"/api/items/{image_id}/thumbnail", {}),
                                (f"/api/items/{image_id}/thumbnail", {"size": 512}),  # rendered now, not stored
                                (f"/api/items/{image_id}/model-input", {}),
                                (f"/api/view/{image_id}/picture", {"size": 1024})):  # the viewer's picture
                response = httpx.get(base + url, params=params, timeout=120)
                assert response.status_code == 200, (name, url, response.text)
                assert words(response.content) == [], (name, url, params)
        clean = httpx.get(f"{base}/api/items/{found['clean.dcm'][0]}/thumbnail", timeout=120)
    assert np.asarray(Image.open(BytesIO(clean.content))).std() > 10  # a clean image is shown as it is
    masked = np.asarray(Image.open(BytesIO(_stored_png(store, found["unflagged.dcm"][0]))))
    assert masked.std() > 10 and masked[200:].std() > 10  # the text masked, the rest of the picture kept


def test_the_model_input_is_unchanged(store: Path, tiny_embedder: Any) -> None:
    from medsearch.storage import vector_codec

    image_id, regions = rows(store)["unflagged.dcm"]
    assert regions
    with sqlite3.connect(store / "medsearch.db") as db:
        blob = db.execute("select embedding from image_vectors where id = ?", (image_id,)).fetchone()[0]
    pixels = read_file(next(Path(p) for p in _paths(store) if p.endswith("unflagged.dcm")), ReadOptions())[0].pixels
    expected = tiny_embedder.embed_images(tiny_embedder.preprocessor(pixels)[None])[0]
    assert float(np.dot(vector_codec.decode(blob), expected)) > 0.999


def test_keeping_identity_keeps_the_text(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    folder = tmp_path / "in"
    folder.mkdir()
    write_dicom(folder / "flagged.dcm", burned(radiograph(1), NAME), Modality="US", BurnedInAnnotation="YES")
    store = tmp_path / "store"
    with Medsearch.open(store, create=True, writable=True, embedder=tiny_embedder) as engine:
        engine.index([folder], IndexSettings(workers=0, read_options=ReadOptions(keep_identity=True)))
    assert words(_stored_png(store, rows(store)["flagged.dcm"][0]))


def _paths(store: Path) -> list[str]:
    with sqlite3.connect(store / "medsearch.db") as db:
        return [row[0] for row in db.execute("select path from images")]


def _stored_png(store: Path, image_id: int) -> bytes:
    with sqlite3.connect(store / "medsearch.db") as db:
        return bytes(db.execute("select png from thumbnails where image_id = ?", (image_id,)).fetchone()[0])


def test_the_heatmap_overlay_shows_no_legible_text(store: Path, tiny_embedder: Any) -> None:
    """``explain``'s overlay is a picture medsearch serves and writes: its image under the heatmap is the
    masked (or withheld) one; the heatmap itself is computed on the whole image."""
    from medsearch.api import Medsearch

    found = rows(store)
    with Medsearch.open(store, embedder=tiny_embedder) as ms:
        for name in ("flagged.dcm", "unflagged.dcm"):
            made = ms.explain(found[name][0], "a red circle", "values")
            read = " ".join(words(made.png())).upper()  # the caption and the colour bar's numbers are text
            assert not any(part in read for line in NAME for part in line.upper().split() if len(part) > 3), read
            assert made.heatmap.grid.size > 0


def test_an_image_not_checked_when_indexed_is_read_by_the_detector_before_its_overlay(store: Path,
                                                                                       tiny_embedder: Any) -> None:
    """The overlay trusts the index-time reading (``text_regions``); where there is none (a store from before
    the detector), the detector reads the picture now."""
    from medsearch.api import Medsearch

    image_id, regions = rows(store)["unflagged.dcm"]
    assert regions
    with sqlite3.connect(store / "medsearch.db") as db:
        db.execute("update images set text_regions = null where id = ?", (image_id,))
    try:
        with Medsearch.open(store, embedder=tiny_embedder) as ms:
            made = ms.explain(image_id, "a red circle", "values")
        read = " ".join(words(made.png())).upper()
        assert not any(part in read for line in NAME for part in line.upper().split() if len(part) > 3), read
    finally:
        with sqlite3.connect(store / "medsearch.db") as db:
            db.execute("update images set text_regions = ? where id = ?", (regions, image_id))


def test_explaining_a_clean_image_runs_no_detector_and_detectors_are_shared(store: Path, tiny_model: Path) -> None:
    """A heatmap of an image the detector found clean when indexing costs no OCR (a Tesseract engine costs
    about a second to make); engines are pooled, never one per server thread."""
    import subprocess
    import sys

    script = ("import sys, threading\n"
              "from medsearch.api import Medsearch\n"
              "from medsearch.indexer import text_detect\n"
              f"with Medsearch.open({str(store)!r}, model={str(tiny_model)!r}) as ms:\n"
              f"    ms.explain({rows(store)['clean.dcm'][0]}, 'a red circle', 'values')\n"
              "    print('made', text_detect._pool.made)\n"
              "    import numpy as np\n"
              "    threads = [threading.Thread(target=text_detect.find_text, args=(np.zeros((64, 64), np.float32),))\n"
              "               for _ in range(12)]\n"
              "    [t.start() for t in threads]; [t.join() for t in threads]\n"
              "    print('pooled', text_detect._pool.made, text_detect.POOL_SIZE)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    made = done.stdout.split()
    assert made[made.index("made") + 1] == "0", done.stdout
    pooled, size = int(made[made.index("pooled") + 1]), int(made[made.index("pooled") + 2])
    assert 1 <= pooled <= size, done.stdout
