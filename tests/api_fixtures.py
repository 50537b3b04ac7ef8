"""Helpers shared by the API tests: a store indexed with the tiny model, and a real uvicorn server on a
free loopback port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REAL_DICOMS, pydicom_file, write_png


def make_images(folder: Path, seeds: range) -> Path:
    """PNG files ``case{seed}.png`` plus, when ``seeds`` starts at 0, three real DICOMs."""
    for seed in seeds:
        write_png(folder / f"case{seed:03d}.png", seed)
    if seeds.start == 0:
        for name in REAL_DICOMS[:3]:
            shutil.copy(pydicom_file(name), folder / name)
    return folder


def index_store(store: Path, folder: Path, embedder: Any) -> None:
    """Index ``folder`` into ``store`` with ``embedder`` (inline decoding, no worker processes)."""
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    with Medsearch.open(store, create=True, writable=True, embedder=embedder) as engine:
        engine.index([folder], IndexSettings(workers=0))


def store_with_sites(base: Path, embedder: Any) -> Path:
    """``base/store``: six PNGs and three DICOMs of ``base/images`` (returned) indexed with ``embedder``, the
    PNGs with sidecar fields ``site`` (case001, 003, 005 north, the others south) and ``age`` (40 + seed)."""
    from medsearch.indexer.sidecar import import_sidecar
    from medsearch.storage.store import Store

    images = make_images(base / "images", range(6))
    index_store(base / "store", images, embedder)
    (images / "meta.csv").write_text("file,site,age\n" + "".join(
        f"case{seed:03d}.png,{'north' if seed % 2 else 'south'},{40 + seed}\n" for seed in range(6)))
    with Store.open(base / "store", writable=True) as store:
        import_sidecar(store, images / "meta.csv")
    return images


def store_and_client(name: str) -> tuple[Any, Any]:
    """Module-scoped ``store`` (six PNGs and three DICOMs indexed with the tiny model) and ``client`` (a
    TestClient of the app on it) fixtures; each test module that assigns them gets its own store."""
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    @pytest.fixture(scope="module")
    def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
        root = tmp_path_factory.mktemp(name)
        index_store(root / "store", make_images(root / "images", range(6)), tiny_embedder)
        return root / "store"

    @pytest.fixture(scope="module")
    def client(store: Path, tiny_embedder: Any) -> Iterator[Any]:
        with TestClient(create_app(store, embedder=tiny_embedder, settings=ServerSettings())) as test_client:
            yield test_client

    return store, client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread; yields the base URL; stops it afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    assert httpx.get(f"{base}/api/health", timeout=5).status_code == 200
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)
