"""The API's guards: bearer token, files only from inside the indexed roots (traversal attempts, symlinks,
rows pointing elsewhere), the upload size limit, CORS off by default, no identity in responses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings
from medsearch.storage.models import Image
from medsearch.storage.store import Store
from sqlalchemy import select, update

from tests.api_fixtures import index_store, make_images
from tests.conftest import write_png

TOKEN = "s3cret-token"
RAW = {"content-type": "application/octet-stream"}


@pytest.fixture
def store(tmp_path: Path, tiny_embedder: Any) -> Path:
    index_store(tmp_path / "store", make_images(tmp_path / "root", range(4)), tiny_embedder)
    return tmp_path / "store"


def _client(store: Path, embedder: Any, **settings: Any) -> TestClient:
    return TestClient(create_app(store, embedder=embedder, settings=ServerSettings(**settings)))


@pytest.fixture
def client(store: Path, tiny_embedder: Any) -> Iterator[TestClient]:
    with _client(store, tiny_embedder) as test_client:
        yield test_client


def _row_id(store: Path, name: str) -> int:
    with Store.open(store) as opened, opened.read_session() as session:
        return int(session.scalar(select(Image.id).where(Image.path.endswith(name))))


def _set_row(store: Path, image_id: int, **values: Any) -> None:
    with Store.open(store) as opened, opened.write_session() as session:
        session.execute(update(Image).where(Image.id == image_id).values(**values))


def test_token_guards_every_route_but_health_and_page(store: Path, tiny_embedder: Any) -> None:
    with _client(store, tiny_embedder, api_token=TOKEN) as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/").status_code == 200
        urls = ("/api/info", "/api/search?q=x", "/api/similar/1", "/api/items/1", "/api/items/1/thumbnail")
        for url in urls:
            missing = client.get(url)
            wrong = client.get(url, headers={"Authorization": "Bearer nope"})
            assert missing.status_code == wrong.status_code == 401, url
            assert missing.json()["error"]["code"] == "unauthorized"
            assert client.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200, url
        assert client.post("/api/similar", content=b"x", headers=RAW).status_code == 401
        assert client.get("/api/info", headers={"Authorization": TOKEN}).status_code == 401


TRAVERSALS = [
    "/api/items/../../../../etc/passwd",
    "/api/items/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/api/items/..%2f..%2f..%2fetc%2fpasswd/thumbnail",
    "/api/items/%2Fetc%2Fpasswd/thumbnail",
    "/api/items//etc/passwd",
    "/api/items/1/thumbnail/../../../../etc/passwd",
    "/web/../../../../etc/passwd",
    "/web/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/web/..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/web//etc/passwd",
    "/api/similar/..%2f1",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_traversal_attempts_never_serve_a_file(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert b"root:" not in response.content
    assert response.status_code in (404, 405, 422), (url, response.status_code)
    assert response.json()["error"]["code"]


def test_stored_path_outside_the_roots_is_refused(store: Path, client: TestClient, tmp_path: Path) -> None:
    outside = write_png(tmp_path / "elsewhere" / "secret.png", 99)
    image_id = _row_id(store, "case001.png")
    _set_row(store, image_id, path=str(outside))
    response = client.get(f"/api/items/{image_id}/thumbnail")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    _set_row(store, image_id, path="/etc/passwd")
    assert client.get(f"/api/items/{image_id}/thumbnail").status_code == 403
    _set_row(store, image_id, path=str(tmp_path / "root" / ".." / "elsewhere" / "secret.png"))
    assert client.get(f"/api/items/{image_id}/thumbnail").status_code == 403


def test_symlink_inside_a_root_pointing_outside_is_refused(store: Path, client: TestClient,
                                                          tmp_path: Path) -> None:
    image_id = _row_id(store, "case002.png")
    assert client.get(f"/api/items/{image_id}/thumbnail").status_code == 200
    outside = write_png(tmp_path / "elsewhere" / "other.png", 98)
    inside = tmp_path / "root" / "case002.png"
    inside.unlink()
    inside.symlink_to(outside)
    response = client.get(f"/api/items/{image_id}/thumbnail")
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_a_missing_file_is_404(store: Path, client: TestClient, tmp_path: Path) -> None:
    image_id = _row_id(store, "case003.png")
    (tmp_path / "root" / "case003.png").unlink()
    assert client.get(f"/api/items/{image_id}/thumbnail").status_code == 404


def test_upload_limit(store: Path, tiny_embedder: Any) -> None:
    big = b"\x89PNG\r\n\x1a\n" + b"0" * 5000
    with _client(store, tiny_embedder, upload_limit=1000) as client:
        form = client.post("/api/similar", files={"file": ("big.png", big)})
        raw = client.post("/api/similar", content=big, headers=RAW)
        chunked = client.post("/api/similar", content=iter([big[:2500], big[2500:]]), headers=RAW)
        assert client.post("/api/similar", files={"file": ("x.png", b"0" * 500)}).status_code == 415
    for response in (form, raw, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
    assert "content-length" not in chunked.request.headers


def test_cors_is_off_unless_configured(store: Path, tiny_embedder: Any) -> None:
    preflight = {"Origin": "http://other.test", "Access-Control-Request-Method": "GET"}
    with _client(store, tiny_embedder) as client:
        closed = client.options("/api/search", headers=preflight)
        plain = client.get("/api/health", headers={"Origin": "http://other.test"})
    with _client(store, tiny_embedder, cors_origins=("http://other.test",)) as client:
        opened = client.options("/api/search", headers=preflight)
    assert "access-control-allow-origin" not in closed.headers
    assert "access-control-allow-origin" not in plain.headers
    assert opened.headers["access-control-allow-origin"] == "http://other.test"


def test_identity_never_leaves_the_server(store: Path, client: TestClient) -> None:
    image_id = _row_id(store, "CT_small.dcm")
    _set_row(store, image_id, identity='{"PatientName": "DOE^JANE", "PatientID": "MRN-4711"}')
    bodies = [client.get(f"/api/items/{image_id}").text,
              client.get("/api/search", params={"q": "anything", "k": 20}).text,
              client.get(f"/api/similar/{image_id}", params={"k": 20}).text,
              client.get("/api/info").text]
    assert all("DOE^JANE" not in body and "MRN-4711" not in body for body in bodies)
    assert str(image_id) in bodies[0]
