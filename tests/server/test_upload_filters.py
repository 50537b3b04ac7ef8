"""Issue 14 over real HTTP: ``POST /api/similar`` takes the same ``where``, ``min_score``, ``group_by``,
``k`` and ``offset`` as the other searches (as form fields); the 413 message states the configured
limit; items and results carry the sidecar fields."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_fixtures import running_server, store_with_sites

LIMIT = 200_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Iterator[dict[str, Any]]:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    base = tmp_path_factory.mktemp("upload-filters")
    images = store_with_sites(base, tiny_embedder)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MEDSEARCH_UPLOAD_LIMIT", str(LIMIT))
        settings = ServerSettings.from_env()
    assert settings.upload_limit == LIMIT
    with running_server(create_app(base / "store", embedder=tiny_embedder, settings=settings)) as url:
        yield {"url": url, "images": images}


def _upload(served: dict[str, Any], data: dict[str, Any], name: str = "case002.png") -> httpx.Response:
    image = (served["images"] / name).read_bytes()
    return httpx.post(f"{served['url']}/api/similar", files={"file": (name, image)}, data=data, timeout=120)


def test_upload_honours_where_and_k(served: dict[str, Any]) -> None:
    everything = _upload(served, {"k": "20"}).json()["results"]
    assert len(everything) == 9
    north = _upload(served, {"where": "site = 'north'", "k": "5"})
    assert north.status_code == 200, north.text
    results = north.json()["results"]
    assert len(results) == 3 and all(r["fields"]["site"] == "north" for r in results)
    assert north.json()["k"] == 5


def test_upload_honours_min_score_offset_and_group_by(served: dict[str, Any]) -> None:
    everything = _upload(served, {"k": "20"}).json()["results"]
    cut = everything[3]["score"]
    above = _upload(served, {"min_score": str(cut), "k": "20"}).json()["results"]
    assert [r["id"] for r in above] == [r["id"] for r in everything if r["score"] >= cut]
    paged = _upload(served, {"offset": "2", "k": "2"}).json()["results"]
    assert [r["id"] for r in paged] == [r["id"] for r in everything[2:4]] and paged[0]["rank"] == 3
    groups = _upload(served, {"group_by": "site", "where": "site is not null"}).json()["results"]
    assert sorted(r["group"]["key"] for r in groups) == ["north", "south"]
    assert all(r["group"]["size"] == 3 for r in groups)


@pytest.mark.parametrize("data, message", [
    ({"where": "sitee = 'north'"}, "did you mean"),
    ({"k": "many"}, "must be a whole number"),
    ({"k": "0"}, "between 1 and 1000"),
    ({"group_by": "nowhere"}, "unknown column"),
    ({"colour": "red"}, "unknown query option"),
])
def test_bad_upload_fields_are_400(served: dict[str, Any], data: dict[str, Any], message: str) -> None:
    response = _upload(served, data)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]["message"]


def test_413_states_the_configured_limit(served: dict[str, Any]) -> None:
    big = b"\x89PNG\r\n\x1a\n" + b"0" * (LIMIT + 1)
    for response in (httpx.post(f"{served['url']}/api/similar", files={"file": ("big.png", big)}, timeout=60),
                     httpx.post(f"{served['url']}/api/similar", content=big, timeout=60,
                                headers={"content-type": "application/octet-stream"})):
        assert response.status_code == 413
        assert f"limit of {LIMIT} bytes" in response.json()["error"]["message"], response.text


def test_items_and_results_carry_the_fields(served: dict[str, Any]) -> None:
    results = _upload(served, {"k": "20"}).json()["results"]
    png = next(r for r in results if Path(r["path"]).name == "case003.png")
    assert png["fields"] == {"site": "north", "age": 43}
    item = httpx.get(f"{served['url']}/api/items/{png['id']}", timeout=60).json()
    assert item["fields"] == {"site": "north", "age": 43}
    found = httpx.get(f"{served['url']}/api/search", params={"q": "a scan", "where": "age >= 44"}, timeout=60).json()
    assert sorted(r["fields"]["age"] for r in found["results"]) == [44, 45]


def test_favicon_is_served_without_a_token(served: dict[str, Any]) -> None:
    from io import BytesIO

    from PIL import Image

    response = httpx.get(f"{served['url']}/favicon.ico", timeout=60)
    assert response.status_code == 200 and response.headers["content-type"] == "image/x-icon"
    assert Image.open(BytesIO(response.content)).format == "ICO"
