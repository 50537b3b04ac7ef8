"""Issue 15, item 2: the server decodes uploads and thumbnails under caps (pixels from the header, memory
and time in a worker process, bounded concurrency), over real HTTP against a running server."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from medsearch.errors import UnreadableFile
from medsearch.indexer.workers import Limits
from medsearch.server.app import create_app
from medsearch.server.decoding import SERVER_MAX_PIXELS, Decoder
from medsearch.server.deps import ServerSettings
from PIL import Image

from tests.api_fixtures import index_store, make_images, running_server


def png_declaring(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB pixels, its data one compressed run of
    zeros (a decompression bomb: a few KB that would decode to width * height * 3 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (1 + 3 * width) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Any:
    base = tmp_path_factory.mktemp("hardening-decode")
    index_store(base / "store", make_images(base / "root", range(2)), tiny_embedder)
    app = create_app(base / "store", embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as url:
        yield url


def test_a_bomb_upload_is_refused_from_its_header(served: str) -> None:
    bomb = png_declaring(13_300, 13_300)
    assert len(bomb) < 64_000
    response = httpx.post(f"{served}/api/similar", files={"file": ("bomb.png", bomb, "image/png")}, timeout=120)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    message = response.json()["error"]["message"]
    assert f"limit {SERVER_MAX_PIXELS}" in message and "--max-upload-pixels" in message and "\n" not in message
    assert httpx.get(f"{served}/api/health", timeout=60).status_code == 200


def test_an_upload_and_a_thumbnail_still_decode(served: str, tmp_path: Path) -> None:
    first = httpx.get(f"{served}/api/search", params={"q": "x", "k": 1}, timeout=60).json()["results"][0]
    image = Path(first["path"]).read_bytes()
    found = httpx.post(f"{served}/api/similar", files={"file": ("a.png", image, "image/png")}, timeout=120)
    assert found.status_code == 200 and found.json()["results"][0]["id"] == first["id"]
    thumbnail = httpx.get(f"{served}/api/items/{first['id']}/thumbnail", params={"size": 32}, timeout=120)
    assert thumbnail.status_code == 200 and thumbnail.content.startswith(b"\x89PNG")


def test_decoding_past_the_memory_cap_costs_the_worker_not_the_server(tmp_path: Path,
                                                                        tiny_embedder: Any) -> None:
    """A picture under the pixel limit whose decoding needs more memory than the worker may have."""
    path = tmp_path / "big.png"
    rgb = np.zeros((7800, 7800, 3), dtype=np.uint8)  # 61 M pixels: 730 MB as float32, under 1 MB on disk
    Image.fromarray(rgb).save(path, compress_level=1)
    del rgb
    decoder = Decoder(Limits(seconds=120, memory_bytes=600 * 1024**2))
    with pytest.raises(UnreadableFile, match="memory"):
        decoder.upload_pixels(path.read_bytes(), "big.png", tiny_embedder.preprocessor)
    with pytest.raises(UnreadableFile, match="memory"):
        decoder.thumbnail(path, 64)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((64, 64), dtype=np.uint8)).save(small)
    assert decoder.thumbnail(small, 32).startswith(b"\x89PNG")  # the same decoder goes on working
