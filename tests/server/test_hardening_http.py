"""Red-team attacks on the HTTP server (issue 15, items 3, 4 and 9), over real HTTP against a running
uvicorn on loopback: DNS rebinding (a foreign Host name), cross-site bodies (text/plain, url-encoded forms),
docs without a token, and a form of very many parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings
from medsearch.server.upload import MAX_PARTS

from tests.api_fixtures import index_store, make_images, running_server

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
    base = tmp_path_factory.mktemp("hardening-http")
    index_store(base / "store", make_images(base / "root", range(3)), tiny_embedder)
    return base / "store"


def _serve(store: Path, embedder: Any, **settings: Any) -> Any:
    return running_server(create_app(store, embedder=embedder, settings=ServerSettings(**settings)))


@pytest.fixture(scope="module")
def base(store: Path, tiny_embedder: Any) -> Iterator[str]:
    with _serve(store, tiny_embedder, allowed_hosts=("search.example.org",)) as url:
        yield url


def test_a_foreign_host_name_is_refused(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    for host in ("evil.example.com", f"evil.example.com:{port}", "127.0.0.1.evil.example.com", "localhost.:1"):
        response = httpx.get(f"{base}/api/search", params={"q": "x"}, headers={"Host": host}, timeout=60)
        assert response.status_code == 400, host
        assert response.json()["error"]["code"] == "invalid_host"
        assert "results" not in response.text
    assert httpx.get(f"{base}/api/items/1/thumbnail", headers={"Host": "evil.example.com"},
                     timeout=60).status_code == 400
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", "search.example.org"):
        assert httpx.get(f"{base}/api/search", params={"q": "x"}, headers={"Host": host},
                         timeout=60).status_code == 200, host


def test_post_bodies_a_browser_sends_cross_site_are_refused(base: str, store: Path) -> None:
    image = next((store.parent / "root").glob("*.png")).read_bytes()
    for kind in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", None):
        headers = {"content-type": kind} if kind else {}
        response = httpx.post(f"{base}/api/similar", content=image, headers=headers, timeout=60)
        assert response.status_code == 415, kind
        assert response.json()["error"]["code"] == "unsupported_media_type"
    cohort = httpx.post(f"{base}/api/cohorts", content=b'{"name": "x", "criteria": []}',
                        headers={"content-type": "text/plain"}, timeout=60)
    assert cohort.status_code == 415
    raw = httpx.post(f"{base}/api/similar", content=image, headers={"content-type": "application/octet-stream"},
                     timeout=60)
    form = httpx.post(f"{base}/api/similar", files={"file": ("a.png", image, "image/png")}, timeout=60)
    assert raw.status_code == form.status_code == 200
    assert raw.json()["results"][0]["id"] == form.json()["results"][0]["id"]


def test_the_docs_need_the_token(store: Path, tiny_embedder: Any) -> None:
    with _serve(store, tiny_embedder, api_token=TOKEN) as url:
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/"):
            assert httpx.get(url + path, timeout=60).status_code == 401, path
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(url + "/openapi.json", headers=bearer, timeout=60).json()["info"]["title"] == "medsearch"
        assert httpx.get(url + "/api/health", timeout=60).status_code == 200


def test_a_form_of_many_parts_is_refused_and_the_server_stays_up(base: str) -> None:
    boundary = "b0undary"
    empty = f"--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n".encode()
    body = empty * 200_000 + f"--{boundary}--\r\n".encode()  # 9.8 MB, 200 k parts
    response = httpx.post(f"{base}/api/similar", content=body, timeout=120,
                          headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400
    assert f"more than {MAX_PARTS} parts" in response.json()["error"]["message"]
    assert httpx.get(f"{base}/api/health", timeout=60).status_code == 200
