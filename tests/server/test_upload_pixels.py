"""``medsearch serve --max-upload-pixels``: the pixel limit on uploads is a server setting; an upload over it
gets a 413 naming the setting (read from the header, never decoded), one under it is searched, and stored
images' thumbnails keep the server's own limit. Real uvicorn servers on loopback, real PNG and DICOM."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import free_port, index_store, make_images, running_server
from tests.conftest import pydicom_file, write_png

REPO = Path(__file__).parents[2]
LIMIT = 1_000  # pixels: a 40 x 30 PNG (1,200) is over it, a 30 x 30 one (900) under


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
    base = tmp_path_factory.mktemp("upload-pixels")
    index_store(base / "store", make_images(base / "images", range(2)), tiny_embedder)
    return base / "store"


def _upload(base: str, name: str, data: bytes) -> httpx.Response:
    return httpx.post(f"{base}/api/similar", files={"file": (name, data)}, params={"k": 2}, timeout=120)


def _assert_refused(response: httpx.Response, pixels: int) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert f"{pixels} " in error["message"] and f"at most {LIMIT} pixels" in error["message"]
    assert "--max-upload-pixels" in error["message"] and "\n" not in error["message"]


def test_the_setting_caps_uploads_not_thumbnails(store: Path, tmp_path: Path, tiny_embedder: Any) -> None:
    over, under = write_png(tmp_path / "over.png", 1, (40, 30)), write_png(tmp_path / "under.png", 2, (30, 30))
    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings(max_upload_pixels=LIMIT))
    with running_server(app) as base:
        _assert_refused(_upload(base, "over.png", over.read_bytes()), 1200)
        _assert_refused(_upload(base, "CT_small.dcm", pydicom_file("CT_small.dcm").read_bytes()), 128 * 128)
        found = _upload(base, "under.png", under.read_bytes())
        assert found.status_code == 200 and len(found.json()["results"]) == 2
        thumbnail = httpx.get(f"{base}/api/items/1/thumbnail", params={"size": 32}, timeout=120)
        assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")  # 40 x 30, stored
        assert httpx.get(f"{base}/api/health", timeout=60).status_code == 200


def test_medsearch_serve_takes_the_setting(store: Path, tmp_path: Path, tiny_model: Path) -> None:
    over = write_png(tmp_path / "over.png", 1, (40, 30))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "medsearch.cli", "serve", "--store", str(store), "--port", str(port), "--model",
         str(tiny_model), "--max-upload-pixels", str(LIMIT)],
        cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while server.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # polling the condition: the server answers
        assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else ""
        _assert_refused(_upload(base, "over.png", over.read_bytes()), 1200)
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_a_limit_below_one_is_refused_on_one_line(cli: Any, store: Path) -> None:
    refused = cli("serve", "--store", store, "--max-upload-pixels", "0", expect=2)
    assert "--max-upload-pixels" in refused.output and "Traceback" not in refused.output
