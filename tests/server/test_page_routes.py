"""The page's own routes over real HTTP (TestClient): facets with counts under a filter, and the model's
input of a stored image."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.server.page_store import IMAGES, labelled_store


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    store = labelled_store(tmp_path_factory.mktemp("page"), tiny_embedder)
    with TestClient(create_app(store, embedder=tiny_embedder, settings=ServerSettings())) as test_client:
        yield test_client


def _counts(body: dict[str, Any], column: str) -> dict[Any, int]:
    return {v["value"]: v["count"] for v in body["columns"][column]["values"]}


def test_facets_count_values_of_columns_and_small_fields(client: Any) -> None:
    body = client.get("/api/facets").json()
    assert body["images"] == IMAGES
    assert body["splits"] == ["split"]
    assert _counts(body, "finding") == {"round": 15, "square": 30}
    assert _counts(body, "grade") == {1: 23, 2: 22} and body["columns"]["grade"]["kind"] == "number"
    assert sum(_counts(body, "split").values()) == IMAGES
    assert sum(_counts(body, "modality").values()) == 3  # only the DICOMs have a modality; PNGs leave it empty


def test_facets_follow_the_filter_and_refuse_a_bad_one(client: Any) -> None:
    body = client.get("/api/facets", params={"where": "finding = 'round'"}).json()
    assert body["images"] == 15
    assert _counts(body, "finding") == {"round": 15}
    assert "modality" not in body["columns"]  # no DICOM has the field
    bad = client.get("/api/facets", params={"where": "nonsense >"})
    assert bad.status_code == 400 and set(bad.json()) == {"error"}


def test_model_input_is_the_padded_square_at_the_models_size(client: Any, tiny_embedder: Any) -> None:
    from PIL import Image

    first = client.get("/api/search", params={"q": "a round shape", "k": 1}).json()["results"][0]
    response = client.get(f"/api/items/{first['id']}/model-input")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(response.content)))
    side = tiny_embedder.preprocessor.size
    assert picture.shape[:2] == (side, side)
    assert response.content == client.app.state.engine.medsearch.model_input_png(first["id"])  # the worker's
    assert client.get("/api/items/999999/model-input").status_code == 404
    dicoms = client.get("/api/search", params={"q": "x", "k": 10, "where": "modality is not null"}).json()["results"]
    assert len(dicoms) == 3
    for dicom in dicoms:  # windowed, padded DICOMs: the worker's picture is the library's
        shown = client.get(f"/api/items/{dicom['id']}/model-input").content
        assert shown == client.app.state.engine.medsearch.model_input_png(dicom["id"])


def test_model_input_refuses_a_file_outside_the_roots(client: Any, tmp_path: Path) -> None:
    engine = client.app.state.engine
    image_id = int(client.get("/api/search", params={"q": "x", "k": 1}).json()["results"][0]["id"])
    stored = Path(engine.medsearch.image_path(image_id))
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(stored.read_bytes())
    backup = stored.with_suffix(".bak")
    stored.rename(backup)
    try:
        stored.symlink_to(outside)
        assert client.get(f"/api/items/{image_id}/model-input").status_code == 403
    finally:
        stored.unlink()
        backup.rename(stored)
