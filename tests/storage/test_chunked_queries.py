"""Queries that bind a list of ids or paths go through ``medsearch.storage.chunking.chunked``: with SQLite's bound
variable limit lowered to 12 on every connection (stock SQLite allows 32,766) and ``CHUNK_SIZE`` set to 5,
searches, grouping, one-per cohorts, top-N cohorts beyond the limit, classification and evaluation over
30 images still work, on a real store indexed with the tiny model."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.labels.labelsets import parse_label_list
from medsearch.storage import chunking
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.api_fixtures import index_store
from tests.conftest import write_png

LIMIT = 12
IMAGES = 30


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_embedder: Any) -> Path:
    root = tmp_path_factory.mktemp("chunked")
    for seed in range(IMAGES):
        write_png(root / "images" / f"case{seed:03d}.png", seed)
    index_store(root / "store", root / "images", tiny_embedder)
    return root / "store"


def _limit_variables(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT)


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every new SQLite connection allows only ``LIMIT`` bound variables; lists go 5 at a time."""
    monkeypatch.setattr(chunking, "CHUNK_SIZE", 5)
    event.listen(Engine, "connect", _limit_variables)
    try:
        yield
    finally:
        event.remove(Engine, "connect", _limit_variables)


@pytest.fixture
def ms(store: Path, tiny_embedder: Any, small_limits: None) -> Iterator[Medsearch]:
    with Medsearch.open(store, writable=True, embedder=tiny_embedder) as opened:
        yield opened


def test_the_limit_is_real(ms: Medsearch) -> None:
    with ms.store.read_session() as session, pytest.raises(Exception, match="too many SQL variables"):
        session.connection().exec_driver_sql(
            f"select id from images where id in ({','.join('?' * (LIMIT + 1))})", tuple(range(LIMIT + 1)))


def test_search_groups_and_classify_read_every_chunk(ms: Medsearch) -> None:
    results = ms.search("x", k=IMAGES)
    assert len(results) == IMAGES and len({r.path for r in results}) == IMAGES
    grouped = ms.search("x", k=IMAGES, group_by="file_format")
    assert len(grouped) == 1 and grouped[0].group and grouped[0].group["size"] == IMAGES
    by_path = ms.search("x", k=IMAGES, group_by="path")
    assert [r.id for r in by_path] == [r.id for r in results]
    ids = [r.id for r in results]
    classified = ms.classify_ids(ids, parse_label_list("normal;abnormal"))
    assert [c.id for c in classified] == ids and [c.path for c in classified] == [r.path for r in results]


def test_cohorts_beyond_the_limit(ms: Medsearch) -> None:
    made = ms.cohorts.create("many", include=[f"text:x top {IMAGES - 2}"], near_duplicates=0.99999)
    assert made["count"] + len(made["collapsed"]) == IMAGES - 2
    assert all(member["path"].endswith(".png") for member in made["members"])
    one_per = ms.cohorts.create("per-path", include=["where:file_format = 'png'"], one_per="path")
    assert one_per["count"] == IMAGES
    assert ms.cohorts.show("per-path")["count"] == IMAGES


def test_import_metadata_matches_more_rows_than_the_limit(ms: Medsearch, store: Path, tmp_path: Path) -> None:
    """A sidecar matching every image (6 chunks of 5, each image id bound once) imports, and imports again
    (the second time deleting the first import's values of those ids, chunk by chunk); the filter cache of
    this process forgets the first import's answers (fields change without a new generation)."""
    from medsearch.indexer.sidecar import import_sidecar

    sidecar = tmp_path / "labels.csv"
    paths = [r.path for r in ms.search("x", k=IMAGES)]
    for grade, other in ((3, 4), (4, 3)):
        sidecar.write_text("path,grade\n" + "".join(f"{path},{grade}\n" for path in paths))
        report = import_sidecar(ms.store, sidecar)
        assert (report.matched_rows, report.images_updated) == (IMAGES, IMAGES)
        assert ms.count(where=[f"grade = {grade}"]) == IMAGES
        assert ms.count(where=[f"grade = {other}"]) == 0
