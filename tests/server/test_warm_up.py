"""A server over an ivf-pq store reads the stored vectors into the page cache in the background at start
(the re-rank of every query reads them at random), answers meanwhile, and stops the reading on shutdown."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import index_store, make_images, running_server


def _search(base: str, text: str) -> list[Any]:
    with urllib.request.urlopen(f"{base}/api/search?q={text.replace(' ', '+')}&k=5", timeout=60) as response:
        return [hit["id"] for hit in json.load(response)["results"]]


def test_an_ivf_pq_server_warms_its_vectors_and_answers_alike(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.api import Medsearch

    index_store(tmp_path / "store", make_images(tmp_path / "images", range(6)), tiny_embedder)
    flat_app = create_app(tmp_path / "store", embedder=tiny_embedder, settings=ServerSettings())
    with running_server(flat_app) as base:
        expected = _search(base, "a bright round shape")
        flat = flat_app.state.engine
        for _wait in range(600):  # bounded: a minute at most
            if flat.warmed is not None:
                break
            time.sleep(0.1)
        assert flat.warmed == 0  # a flat index never reads them back
    with Medsearch.open(tmp_path / "store", writable=True, embedder=tiny_embedder) as ms:
        ms.store.vectors.reindex("ivf-pq")
    app = create_app(tmp_path / "store", embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base:
        assert _search(base, "a bright round shape") == expected
        engine = app.state.engine
        for _wait in range(600):
            if engine.warmed is not None:
                break
            time.sleep(0.1)
        assert engine.warmed == 9
        warming = engine._warming
    assert warming is not None and not warming.is_alive()
