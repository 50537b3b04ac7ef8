"""A field written by one process is seen by every other process's next filtered query: the id sets that
``ids_where`` remembers are keyed by (generation, fields version), and every write to ``image_fields``
bumps the fields version in its own transaction (``medsearch.storage.field_version``). Real SQLite stores, the tiny
model, a real uvicorn server and the real CLI in another process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings
from medsearch.storage import field_version, learn, queries, scores
from medsearch.storage.models import ImageField
from medsearch.storage.store import DB_FILE, Store
from sqlalchemy import select

from tests.api_fixtures import running_server, store_with_sites

REPO = Path(__file__).parents[2]


@pytest.fixture
def sites(tmp_path: Path, tiny_embedder: Any) -> Path:
    """The store of ``store_with_sites``: case001, 003, 005 north, the other PNGs south."""
    store_with_sites(tmp_path, tiny_embedder)
    return tmp_path / "store"


def _fields_version(store: Store) -> int:
    with store.read_session() as session:
        return field_version.current(session)[1]


def _count(base: str, where: str) -> int:
    response = httpx.get(f"{base}/api/search", params={"q": "a scan", "count": "true", "where": where}, timeout=60)
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


def test_a_running_server_sees_import_metadata_run_by_another_process(sites: Path, tmp_path: Path,
                                                                        tiny_embedder: Any) -> None:
    (tmp_path / "images" / "moved.csv").write_text("file,site\ncase001.png,east\ncase002.png,east\n")
    app = create_app(sites, embedder=tiny_embedder, settings=ServerSettings())
    with running_server(app) as base:
        assert (_count(base, "site = 'north'"), _count(base, "site = 'east'")) == (3, 0)  # now remembered
        done = subprocess.run([sys.executable, "-m", "medsearch.cli", "import-metadata",
                               str(tmp_path / "images" / "moved.csv"), "--store", str(sites), "--json"],
                              cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        assert (_count(base, "site = 'north'"), _count(base, "site = 'east'")) == (2, 2)
        assert _count(base, "site = 'south'") == 2


def test_every_field_writer_is_seen_by_another_store_handle(sites: Path) -> None:
    with Store.open(sites) as reader, Store.open(sites, writable=True) as writer:
        ids = queries.all_ids(reader)[:4].tolist()
        before = _fields_version(reader)
        scores.save_scores(writer, "risk", ["risk.high"], "zeroshot:a", [(ids[:2], np.array([[0.9], [0.1]]))])
        assert queries.ids_where(reader, ["risk.high > 0.5"]).tolist() == [ids[0]]  # now remembered
        scores.save_scores(writer, "risk", ["risk.high"], "zeroshot:a", [(ids[:2], np.array([[0.1], [0.9]]))])
        assert queries.ids_where(reader, ["risk.high > 0.5"]).tolist() == [ids[1]]
        learn.replace_field(writer, "fold", "split:fold", "text", {ids[2]: "test", ids[3]: "train"})
        assert queries.ids_where(reader, ["fold = 'test'"]).tolist() == [ids[2]]
        learn.replace_field(writer, "fold", "split:fold", "text", {ids[3]: "test"})
        assert queries.ids_where(reader, ["fold = 'test'"]).tolist() == [ids[3]]
        assert _fields_version(reader) > before


def test_a_flushed_field_object_bumps_the_version_in_its_transaction(sites: Path) -> None:
    with Store.open(sites) as reader, Store.open(sites, writable=True) as writer:
        dicom = int(np.setdiff1d(queries.all_ids(reader), queries.ids_where(reader, ["site is not null"]))[0])
        assert queries.ids_where(reader, ["site = 'west'"]).size == 0  # now remembered
        before = _fields_version(reader)
        with writer.write_session() as session:
            session.add(ImageField(image_id=dicom, name="site", kind="text", text="west", source="test"))
        assert _fields_version(reader) == before + 1
        assert queries.ids_where(reader, ["site = 'west'"]).tolist() == [dicom]
        with writer.write_session() as session:
            session.scalars(select(ImageField).where(ImageField.source == "test")).one().text = "east"
        assert queries.ids_where(reader, ["site = 'west'"]).size == 0


def test_a_store_without_the_counter_gains_it_on_open(sites: Path) -> None:
    with sqlite3.connect(sites / DB_FILE) as connection:
        connection.execute("ALTER TABLE store_info DROP COLUMN fields_version")
    with Store.open(sites, writable=True) as store:
        assert _fields_version(store) == 0
        north = queries.ids_where(store, ["site = 'north'"])
        learn.replace_field(store, "site", "split:site", "text", {int(north[0]): "west"})
        assert _fields_version(store) > 0  # one bump per statement (a delete, an insert)
        assert queries.ids_where(store, ["site = 'north'"]).size == 0
