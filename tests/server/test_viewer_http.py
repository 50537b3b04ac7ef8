"""The viewer's routes against a real store (a CT series, a 12-bit chest radiograph, PNGs), through the
app's real HTTP stack: pictures rendered from the stored values at the asked window, slices in
InstanceNumber order with their scores, presets, default label sets, and hostile parameters refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.server.viewer_store import CT_SLICES, ViewerStore, ct_slice, viewer_store


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> ViewerStore:
    from medsearch.indexer.model_loading import load_embedder

    return viewer_store(tmp_path_factory.mktemp("viewer"), load_embedder(str(trained_model), device="cpu"))


@pytest.fixture(scope="module")
def client(made: ViewerStore, trained_model: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    embedder = load_embedder(str(trained_model), device="cpu")
    with TestClient(create_app(made.store, embedder=embedder, settings=ServerSettings())) as test_client:
        yield test_client


def id_of(made: ViewerStore, path: Path) -> int:
    from medsearch.api import Medsearch
    from medsearch.storage import queries

    with Medsearch.open(made.store) as ms:
        return queries.ids_of_path(ms.store, str(path.resolve()))[0]


def grey(response: Any) -> np.ndarray:
    from PIL import Image

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("L"), dtype=np.float32)


def test_a_ct_slice_is_rendered_from_its_hounsfield_values_at_the_asked_window(made: ViewerStore, client: Any) -> None:
    image_id = id_of(made, made.ct[0])
    hu = ct_slice(1).astype(np.float32)
    for center, width in ((40.0, 400.0), (-600.0, 1500.0), (400.0, 1800.0)):
        shown = grey(client.get(f"/api/view/{image_id}/picture", params={"center": center, "width": width}))
        expected = np.clip((hu - (center - width / 2)) / width, 0, 1) * 255
        assert shown.shape == hu.shape
        assert np.abs(shown - expected).max() <= 1.0  # every pixel, to rounding: full bit depth, not 8-bit
    lung = client.get(f"/api/view/{image_id}/picture", params={"preset": "lung"})
    assert lung.headers["x-window-center"] == "-600" and lung.headers["x-window-width"] == "1500"
    start = client.get(f"/api/view/{image_id}/picture")  # no window of its own: a CT opens at soft tissue
    assert (start.headers["x-window-center"], start.headers["x-window-width"]) == ("40", "400")


def test_the_radiograph_opens_at_its_own_window_and_fits_the_asked_size(made: ViewerStore, client: Any) -> None:
    image_id = id_of(made, made.radiograph)
    response = client.get(f"/api/view/{image_id}/picture", params={"size": 160})
    assert (response.headers["x-window-center"], response.headers["x-window-width"]) == ("1800", "3000")
    assert grey(response).shape == (160, 128)
    narrow = grey(client.get(f"/api/view/{image_id}/picture", params={"center": 700, "width": 200, "size": 160}))
    assert narrow.max() == 255 and narrow.min() == 0  # the bright bone is clipped white at a lung window
    info = client.get(f"/api/view/{image_id}").json()
    assert info["presets"] == {} and info["label_set"] == "cxr-findings" and info["has_patient"] is True


def test_the_series_pages_in_instance_order_with_each_slices_score(made: ViewerStore, client: Any) -> None:
    ids = [id_of(made, path) for path in made.ct]
    info = client.get(f"/api/view/{ids[2]}", params={"q": "a white cross"}).json()
    assert [s["id"] for s in info["slices"]] == ids  # by InstanceNumber, not by file name or id
    assert [s["number"] for s in info["slices"]] == list(range(1, CT_SLICES + 1))
    assert info["index"] == 2 and info["has_patient"] is False and info["label_set"] is None
    assert set(info["presets"]) == {"lung", "mediastinum", "bone", "brain", "soft-tissue"}
    search = client.get("/api/search", params={"q": "a white cross", "k": 40, "where": "modality = 'CT'"}).json()
    searched = {r["id"]: r["score"] for r in search["results"]}
    assert all(abs(s["score"] - searched[s["id"]]) < 1e-5 for s in info["slices"])
    assert len({round(s["score"], 6) for s in info["slices"]}) > 1  # each slice its own score
    plain = client.get(f"/api/view/{ids[2]}").json()
    assert all(s["score"] is None for s in plain["slices"])
    png = client.get(f"/api/view/{id_of(made, made.pngs[0])}").json()
    assert [s["id"] for s in png["slices"]] == [png["id"]] and png["label_set"] is None


def test_colour_pictures_are_served_as_they_are(made: ViewerStore, client: Any) -> None:
    from PIL import Image

    response = client.get(f"/api/view/{id_of(made, made.pngs[0])}/picture")
    assert response.status_code == 200 and "x-window-center" not in response.headers
    original = np.asarray(Image.open(made.pngs[0]).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")), original)


@pytest.mark.parametrize("params", [{"center": 40}, {"center": 40, "width": 0}, {"center": 40, "width": -5},
                                    {"preset": "liver"}, {"size": 5}, {"size": 100000}, {"center": "nan", "width": 3}])
def test_bad_windows_and_sizes_are_refused_in_one_line(made: ViewerStore, client: Any, params: dict[str, Any]) -> None:
    response = client.get(f"/api/view/{id_of(made, made.ct[0])}/picture", params=params)
    assert response.status_code in (400, 422)
    message = response.json()["error"]["message"]
    assert "\n" not in message and "Traceback" not in message


def test_unknown_ids_and_files_gone_are_404(made: ViewerStore, client: Any, tmp_path: Path) -> None:
    assert client.get("/api/view/999999/picture").status_code == 404
    assert client.get("/api/view/999999").status_code == 404
    assert client.get(f"/api/view/{id_of(made, made.ct[0])}", params={"similar": 999999}).status_code == 404


def test_a_file_changed_into_garbage_is_one_line_415_and_nothing_else_breaks(made: ViewerStore, client: Any) -> None:
    target = made.pngs[-1]
    kept = target.read_bytes()
    try:
        target.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 100)
        response = client.get(f"/api/view/{id_of(made, target)}/picture")
        assert response.status_code == 415  # UnreadableFile, as for every picture the server cannot read
        assert "\n" not in response.json()["error"]["message"]
    finally:
        target.write_bytes(kept)
    assert client.get(f"/api/view/{id_of(made, made.ct[0])}/picture", params={"size": 64}).status_code == 200


def test_the_kept_worker_survives_a_crash_and_a_hang() -> None:
    from medsearch.errors import UnreadableFile
    from medsearch.indexer.workers import Limits
    from medsearch.viewer.workers import KeptWorkers

    from tests.server.worker_tasks import crash_or_double, hang

    workers = KeptWorkers(Limits(seconds=8.0))
    try:
        assert workers.run(crash_or_double, 4) == 8
        with pytest.raises(UnreadableFile, match="crashed"):
            workers.run(crash_or_double, -1)
        assert workers.run(crash_or_double, 5) == 10  # a fresh worker
        with pytest.raises(UnreadableFile, match="longer than 8 s"):
            workers.run(hang, 60.0)
        assert workers.run(crash_or_double, 6) == 12
    finally:
        workers.close()
