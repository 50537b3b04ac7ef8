"""Thumbnails made at index time: one per image, stored in the store, served by the HTTP API without
decoding the file again, remade when the file changes and removed with the image."""

from __future__ import annotations

import os
import sqlite3
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from medsearch.indexer.thumbnail import THUMBNAIL_SIZE
from PIL import Image

from tests.api_fixtures import index_store, make_images, running_server
from tests.conftest import write_png


def stored(store: Path) -> dict[str, bytes]:
    """File name -> its stored thumbnail."""
    with sqlite3.connect(store / "medsearch.db") as db:
        rows = db.execute("select i.path, t.png from thumbnails t join images i on i.id = t.image_id").fetchall()
    return {Path(path).name: png for path, png in rows}


def ids(store: Path) -> dict[str, int]:
    with sqlite3.connect(store / "medsearch.db") as db:
        return {Path(path).name: image_id for path, image_id in db.execute("select path, id from images")}


def test_thumbnails_are_made_at_index_time_served_remade_and_removed(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    folder, store = make_images(tmp_path / "images", range(3)), tmp_path / "store"
    write_png(folder / "wide.png", 9, size=(600, 150))
    index_store(store, folder, tiny_embedder)
    made = stored(store)
    assert sorted(made) == sorted(ids(store))  # one per image, DICOMs included
    wide = Image.open(BytesIO(made["wide.png"]))
    assert wide.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE // 4)
    dicom = next(name for name in made if name.endswith(".dcm"))
    assert np.asarray(Image.open(BytesIO(made[dicom]))).std() > 5  # windowed pixels, not a blank square

    app = create_app(store, embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base:
        for name, image_id in ids(store).items():
            response = httpx.get(f"{base}/api/items/{image_id}/thumbnail", timeout=30)
            assert response.status_code == 200 and response.content == made[name]
        assert app.state.engine.pictures.thumbnails.renders == 0  # none decoded again
        small = httpx.get(f"{base}/api/items/{ids(store)['wide.png']}/thumbnail", params={"size": 64}, timeout=30)
        assert max(Image.open(BytesIO(small.content)).size) == 64 and app.state.engine.pictures.thumbnails.renders == 1
        os.utime(folder / "wide.png", ns=(1, 1))  # changed since indexing: the stored one is stale
        fresh = httpx.get(f"{base}/api/items/{ids(store)['wide.png']}/thumbnail", timeout=30)
        assert fresh.status_code == 200 and app.state.engine.pictures.thumbnails.renders == 2

    write_png(folder / "wide.png", 10, size=(150, 600))  # changed: re-embedded with a new thumbnail
    (folder / "case001.png").unlink()
    index_store(store, folder, tiny_embedder)
    again = stored(store)
    assert "case001.png" not in again and sorted(again) == sorted(ids(store))
    assert Image.open(BytesIO(again["wide.png"])).size == (THUMBNAIL_SIZE // 4, THUMBNAIL_SIZE)
    with sqlite3.connect(store / "medsearch.db") as db:
        assert db.execute("select count(*) from thumbnails").fetchone()[0] == len(again)
