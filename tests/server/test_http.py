"""The HTTP API through real requests: TestClient for the routes, a uvicorn server on a loopback port for
concurrency while another process indexes more images."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from medsearch.batching import TextBatcher
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import index_store, make_images, running_server, store_and_client
from tests.conftest import pydicom_file

store, client = store_and_client("api")


def test_search_pages_and_items(client: TestClient) -> None:
    first = client.get("/api/search", params={"q": "a round shape", "k": 4}).json()
    ranks = [r["rank"] for r in first["results"]]
    scores = [r["score"] for r in first["results"]]
    assert ranks == [1, 2, 3, 4] and scores == sorted(scores, reverse=True)
    assert all(0.0 < r["probability"] < 1.0 for r in first["results"])
    second = client.get("/api/search", params={"q": "a round shape", "k": 4, "offset": 4}).json()
    assert [r["rank"] for r in second["results"]] == [5, 6, 7, 8]
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    item = client.get(f"/api/items/{first['results'][0]['id']}").json()
    assert item["path"] == first["results"][0]["path"] and item["metadata"]["file_format"]


def test_similar_by_id_puts_the_image_first_when_asked(client: TestClient) -> None:
    results = client.get("/api/similar/2", params={"k": 3, "include_self": "true"}).json()["results"]
    assert results[0]["id"] == 2 and results[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(results) == 3


@pytest.mark.parametrize("name", ["CT_small.dcm", "case001.png"])
def test_similar_by_upload_finds_the_same_image(client: TestClient, store: Path, name: str) -> None:
    path = pydicom_file(name) if name.endswith(".dcm") else store.parent / "images" / name
    response = client.post("/api/similar", params={"k": 2}, files={"file": (name, path.read_bytes())})
    top = response.json()["results"][0]
    assert response.status_code == 200 and top["path"].endswith(name)
    assert top["score"] == pytest.approx(1.0, abs=1e-4)
    raw = client.post("/api/similar", params={"k": 1}, content=path.read_bytes(),
                      headers={"content-type": "application/octet-stream"}).json()
    assert raw["results"][0]["id"] == top["id"]


def test_thumbnail_is_a_png_of_the_pixels(client: TestClient) -> None:
    from io import BytesIO

    from PIL import Image

    ids = [r["id"] for r in client.get("/api/search", params={"q": "x", "k": 9}).json()["results"]]
    dicom = next(i for i in ids if client.get(f"/api/items/{i}").json()["metadata"]["file_format"] == "dicom")
    response = client.get(f"/api/items/{dicom}/thumbnail", params={"size": 64})
    image = Image.open(BytesIO(response.content))
    assert response.headers["content-type"] == "image/png" and max(image.size) == 64
    assert np.asarray(image).std() > 5  # windowed pixels, not a blank square


def test_info_and_docs(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["images"] == 9 and info["server"]["filters"] is not None
    assert "/api/search" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


ERROR_CASES = [
    ("get", "/api/search?q=%20%20", 400, "invalid_query"),
    ("get", "/api/search", 400, "invalid_query"),
    ("get", "/api/search?q=x&count=maybe", 400, "invalid_query"),
    ("get", "/api/search?q=x&k=0", 400, "invalid_query"),
    ("get", "/api/items/999999", 404, "not_found"),
    ("get", "/api/no-such-route", 404, "not_found"),
    ("delete", "/api/info", 405, "method_not_allowed"),
    ("post", "/api/similar", 400, "invalid_query"),
]


@pytest.mark.parametrize(("method", "url", "status", "code"), ERROR_CASES)
def test_one_error_shape(client: TestClient, method: str, url: str, status: int, code: str) -> None:
    response = client.request(method, url)
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"]}}
    assert response.json()["error"]["message"]


def test_unreadable_upload_is_415(client: TestClient) -> None:
    response = client.post("/api/similar", files={"file": ("notes.txt", b"not an image at all")})
    assert response.status_code == 415 and response.json()["error"]["code"] == "unreadable_file"


def test_search_filters_and_thresholds(client: TestClient) -> None:
    assert set(client.get("/api/info").json()["server"]["filters"]) == {"where", "min_score", "min_prob", "group_by",
                                                                      "like", "unlike"}
    response = client.get("/api/search", params={"q": "x", "k": 20, "where": "modality = 'CT'"})
    assert response.status_code == 200
    assert [r["metadata"]["modality"] for r in response.json()["results"]] == ["CT"]
    everything = client.get("/api/search", params={"q": "x", "k": 20}).json()["results"]
    cut = everything[2]["score"]
    above = client.get("/api/search", params={"q": "x", "k": 20, "min_score": cut}).json()["results"]
    assert [r["id"] for r in above] == [r["id"] for r in everything[:3]]
    bad = client.get("/api/search", params={"q": "x", "where": "modality = "})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_query"
    assert "position" in bad.json()["error"]


def test_empty_store_answers_503(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.storage.store import Store

    Store.open(tmp_path / "empty", create=True).close()
    with TestClient(create_app(tmp_path / "empty", embedder=tiny_embedder, settings=ServerSettings())) as c:
        response = c.get("/api/search", params={"q": "x"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "store_error"


def test_batcher_puts_concurrent_texts_in_one_call() -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[float(len(t))] for t in texts], dtype=np.float32)

    batcher = TextBatcher(embed, window_s=0.5)
    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(batcher.embed, ["a", "bb", "ccc", "a"]))
    batcher.close()
    assert [float(v[0]) for v in vectors] == [1.0, 2.0, 3.0, 1.0]
    assert len(calls) == 1 and sorted(calls[0]) == ["a", "bb", "ccc"]


def test_parallel_searches_while_another_process_indexes(tmp_path: Path, tiny_model: Path,
                                                         tiny_embedder: Any) -> None:
    store = tmp_path / "store"
    index_store(store, make_images(tmp_path / "images", range(6)), tiny_embedder)
    make_images(tmp_path / "images", range(100, 130))  # 30 new files for the other process
    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings())
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "medsearch.cli", "index", str(tmp_path / "images"), "--store", str(store),
               "--model", str(tiny_model), "--workers", "0", "--batch-size", "2"]
    with running_server(app) as base:
        indexer = subprocess.Popen(command, cwd=Path(__file__).parents[2], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        failures: list[str] = []
        seen_counts = _hammer(base, indexer, failures)
        _out, err = indexer.communicate(timeout=120)
        assert indexer.returncode == 0, err.decode()[-2000:]
        final = httpx.get(f"{base}/api/search", params={"q": "final", "k": 100}, timeout=30).json()
    assert failures == []
    assert len(final["results"]) == 39 and len({r["id"] for r in final["results"]}) == 39
    assert min(seen_counts) >= 9 and max(seen_counts) <= 39


def _hammer(base: str, indexer: subprocess.Popen[bytes], failures: list[str]) -> list[int]:
    """8 threads send searches and similar-case requests until the indexer ends (at most 400 each);
    returns the result counts seen; records every non-200 or inconsistent answer in ``failures``."""
    counts: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for i in range(400):
                if indexer.poll() is not None and i >= 5:
                    return
                url = "/api/search" if i % 3 else "/api/similar/1"
                asked = {"q": f"query {n} {i % 7}"} if i % 3 else {"include_self": "true"}
                response = http.get(url, params={**asked, "k": 100})
                body = response.json()
                ids = [r["id"] for r in body.get("results", [])]
                scores = [r["score"] for r in body.get("results", [])]
                with lock:
                    consistent = len(set(ids)) == len(ids) and scores == sorted(scores, reverse=True)
                    if response.status_code != 200 or not consistent:
                        failures.append(f"{url}: {response.status_code} {str(body)[:200]}")
                    counts.append(len(ids))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))
    return counts
