"""``medsearch explain`` and ``GET /api/explain`` on a real store and a running server: the same grid
from both, the overlay PNG, composed queries (the composed vector's map), the token, and the usual
errors for bad ids, empty texts and unknown methods."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from medsearch.explain.explain import explain_pixels
from PIL import Image

from tests.api_fixtures import index_store, running_server
from tests.explain.pointing import draw

TOKEN = "explain-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, explain_embedder: Any) -> Path:
    root = tmp_path_factory.mktemp("explain-store")
    folder = root / "images"
    folder.mkdir()
    for index, (name, box) in enumerate([("red_circle", (4, 4, 30, 30)), ("blue_square", (30, 10, 60, 40))]):
        draw(name, (64, 48), box, grey=10).save(folder / f"{index}_{name}.png")
    index_store(root / "store", folder, explain_embedder)
    return root / "store"


@pytest.fixture(scope="module")
def base(store: Path, explain_embedder: Any) -> Iterator[str]:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    with running_server(create_app(store, embedder=explain_embedder,
                                   settings=ServerSettings(api_token=TOKEN))) as url:
        yield url


def ids_by_name(cli: Callable[..., Any], store: Path) -> dict[str, int]:
    results = cli("search", "a red circle", "--store", store, "--json")["results"]
    return {Path(r["path"]).stem.split("_", 1)[1]: r["id"] for r in results}


def test_cli_and_route_give_the_same_grid(cli: Callable[..., Any], store: Path, base: str) -> None:
    red = ids_by_name(cli, store)["red_circle"]
    for method in ("legrad", "values"):
        shown = cli("explain", red, "a red circle", "--method", method, "--store", store, "--json")
        served = httpx.get(f"{base}/api/explain", params={"id": red, "text": "a red circle", "method": method,
                                                          "format": "json"}, headers=AUTH, timeout=60)
        assert served.status_code == 200 and "not a finding" in served.headers["x-explanation-note"]
        body = served.json()
        assert body["grid_size"] == shown["grid_size"] == [8, 8]
        np.testing.assert_allclose(body["grid"], shown["grid"], atol=1e-5)
        assert body["method"] == method and body["image_offset"] == [0, 8] and "not a finding" in body["note"]


def test_cli_writes_the_overlay_and_explains_any_file(cli: Callable[..., Any], store: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    draw("yellow_triangle", (48, 64), (10, 30, 40, 60), grey=30).save(outside)
    overlay = tmp_path / "overlay.png"
    result = cli("explain", outside, "a yellow triangle", "-o", overlay, "--store", store)
    assert "not a finding" in result.stdout
    with Image.open(overlay) as image:
        assert image.format == "PNG" and image.size[0] > 448 + 40 and image.size[1] > 448 + 30  # the square,
        # its colour bar and the whole caption (tests/explain/test_render.py)
    data = cli("explain", outside, "a yellow triangle", "--method", "maskclip", "--store", store, "--json")
    assert data["image_size"] == [48, 64] and data["image_offset"] == [8, 0] and len(data["grid"]) == 8


def test_composed_queries_map_the_composed_vector(cli: Callable[..., Any], store: Path, base: str,
                                                  explain_embedder: Any) -> None:
    names = ids_by_name(cli, store)
    red, blue = names["red_circle"], names["blue_square"]
    served = httpx.get(f"{base}/api/explain", headers=AUTH, timeout=60, params={
        "id": red, "text": "a red circle", "like": f"id:{blue}", "method": "values", "format": "json"}).json()
    vectors = np.vstack([explain_embedder.embed_texts(["a red circle"])[0], _stored(store, blue)])
    query = vectors.sum(axis=0) / np.linalg.norm(vectors.sum(axis=0))
    pixels = np.asarray(Image.open(next((store.parent / "images").glob("*red_circle.png"))), dtype=np.float32) / 255
    expected = explain_pixels(explain_embedder, pixels, query, "values").grid
    np.testing.assert_allclose(served["grid"], expected, atol=1e-5)


def _stored(store: Path, image_id: int) -> np.ndarray:
    from medsearch.query.results import stored_vector
    from medsearch.storage.store import Store

    with Store.open(store) as opened:
        return stored_vector(opened, image_id)


def test_route_needs_the_token_and_answers_png(store: Path, base: str) -> None:
    params: dict[str, str | int] = {"id": 1, "text": "a red circle"}
    refused = httpx.get(f"{base}/api/explain", params=params, timeout=60)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    png = httpx.get(f"{base}/api/explain", params=params, headers=AUTH, timeout=60)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG") and "not a finding" in png.headers["x-explanation-note"]


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"id": 999, "text": "a red circle"}, 404, "not_found"),
    ({"id": 1, "text": "  "}, 400, "invalid_query"),
    ({"id": 1}, 400, "invalid_query"),
    ({"id": 1, "text": "a red circle", "method": "gradcam"}, 400, "invalid_query"),
    ({"id": 1, "text": "x", "like": "image:/etc/passwd"}, 400, "invalid_query"),
    ({"id": 0, "text": "a red circle"}, 422, "invalid_request"),
])
def test_route_errors_have_the_usual_shape(base: str, params: dict[str, Any], status: int, code: str) -> None:
    answer = httpx.get(f"{base}/api/explain", params=params, headers=AUTH, timeout=60)
    assert answer.status_code == status and answer.json()["error"]["code"] == code, answer.text


def test_cli_errors_are_one_line(cli: Callable[..., Any], store: Path) -> None:
    missing = cli("explain", "999", "a red circle", "--store", store, expect=6)
    assert missing.stderr.strip() == "error: No image with id 999 in the store."
    empty = cli("explain", "1", " ", "--store", store, "--json", expect=2)
    assert empty["error"]["code"] == "invalid_query"
    cli("explain", "1", "a red circle", "--method", "gradcam", "--store", store, expect=2)
