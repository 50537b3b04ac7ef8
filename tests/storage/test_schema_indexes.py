"""The indexes behind ``/api/facets`` (``medsearch.storage.facets``): an older store gains them in place on its next
open, and every facet query on ``image_fields`` (and on the listed image columns) is answered from an index
(SQLite's own EXPLAIN QUERY PLAN on the statements ``facets`` sends). Real store, tiny model, sidecar CSV."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from medsearch.storage.facets import FACET_COLUMNS, facets
from medsearch.storage.store import DB_FILE, Store
from sqlalchemy import event

from tests.api_fixtures import store_with_sites

FACET_INDEXES = {"ix_image_fields_facets", *(f"ix_images_{name}" for name in FACET_COLUMNS)}


@pytest.fixture
def sites(tmp_path: Path, tiny_embedder: Any) -> Path:
    store_with_sites(tmp_path, tiny_embedder)
    return tmp_path / "store"


def _indexes(store: Path) -> set[str]:
    with sqlite3.connect(store / DB_FILE) as connection:
        return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _facet_plans(store: Store, where: tuple[str, ...]) -> list[tuple[str, str]]:
    """(statement, its query plan in one line) of every SELECT ``facets(store, where)`` sends."""
    sent: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        sent.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        found = facets(store, where)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    assert found["columns"]["site"]["values"]
    with store.engine.connect() as connection:
        return [(statement, " / ".join(row[3] for row in connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters)))
                for statement, parameters in sent if statement.lstrip().startswith("SELECT")]


def test_an_older_store_gains_the_facet_indexes_on_open(sites: Path) -> None:
    assert _indexes(sites) >= FACET_INDEXES
    with sqlite3.connect(sites / DB_FILE) as connection:
        for name in FACET_INDEXES:
            connection.execute(f"DROP INDEX {name}")
    assert not FACET_INDEXES & _indexes(sites)
    with Store.open(sites) as store:
        assert facets(store)["columns"]["site"]["values"] == [{"value": "north", "count": 3},
                                                               {"value": "south", "count": 3}]
    assert _indexes(sites) >= FACET_INDEXES


@pytest.mark.parametrize("where", [(), ("site = 'north'",)])
def test_every_facet_query_reads_an_index(sites: Path, where: tuple[str, ...]) -> None:
    with Store.open(sites) as store:
        plans = _facet_plans(store, where)
    steps = [step for _statement, plan in plans for step in plan.split(" / ") if "image_fields" in step]
    assert steps and all(step.startswith("SEARCH") or "COVERING INDEX" in step for step in steps), steps
    values = [plan for statement, plan in plans if "image_fields_1.kind" in statement]
    assert values and all("COVERING INDEX ix_image_fields_facets" in plan for plan in values), values
    for name in FACET_COLUMNS:
        plan = next(plan for statement, plan in plans if f"images.{name}, count(*)" in statement)
        assert "SCAN images" not in plan.split(" / ")[0], (name, plan)
