"""``medsearch reindex`` through the CLI: every index kind answers like the exact index, survives a reopen
and keeps filtered search correct."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.query.results import stored_vector
from medsearch.storage import snapshot
from medsearch.storage.faiss_calls import index_type_of
from medsearch.storage.store import Store

Cli = Callable[..., Any]


@pytest.fixture
def indexed_store(cli: Cli, image_folder: Path, tiny_model: Path, tmp_path: Path) -> Path:
    store = tmp_path / "store"
    cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    return store


def _ranked(cli: Cli, store: Path, target: Path) -> list[int]:
    found = cli("similar", target, "-k", "9", "--include-self", "--store", store, "--json")
    return [r["id"] for r in found["results"]]


@pytest.mark.parametrize("kind", ["hnsw", "ivf-sq8", "ivf-pq", "flat"])
def test_reindex_switches_kind_and_keeps_answers(cli: Cli, indexed_store: Path, image_folder: Path,
                                                  kind: str) -> None:
    target = image_folder / "dicom" / "CT_small.dcm"
    exact = _ranked(cli, indexed_store, target)
    report = cli("reindex", "--index-type", kind, "--store", indexed_store, "--json")
    assert report["index_type"] == kind and report["count"] == 9
    assert cli("info", "--store", indexed_store, "--json")["index_type"] == kind
    assert json.loads((indexed_store / snapshot.MANIFEST_FILE).read_text())["index_type"] == kind
    assert _ranked(cli, indexed_store, target)[:3] == exact[:3]
    checked = cli("check", "--store", indexed_store, "--json")
    assert checked["ok"] and checked["facts"]["index_count"] == 9

    with Store.open(indexed_store) as store:
        index = store.vectors.index()
        assert index_type_of(index) == kind and index.ntotal == 9
        allowed = np.array(exact[-3:], dtype=np.int64)
        _scores, ids = store.vectors.search(stored_vector(store, exact[0]), 5, allowed)
        assert set(ids[0][:3].tolist()) == set(allowed.tolist()) and (ids[0][3:] == -1).all()


def test_reindex_auto_picks_exact_for_a_small_store(cli: Cli, indexed_store: Path) -> None:
    cli("reindex", "--index-type", "hnsw", "--store", indexed_store, "--json")
    assert cli("reindex", "--index-type", "auto", "--store", indexed_store, "--json")["index_type"] == "flat"


def test_incremental_index_after_reindex(cli: Cli, indexed_store: Path, image_folder: Path,
                                         tiny_model: Path) -> None:
    from tests.conftest import write_png

    cli("reindex", "--index-type", "hnsw", "--store", indexed_store, "--json")
    (image_folder / "png" / "case000.png").unlink()
    added = write_png(image_folder / "png" / "new.png", 99)
    report = cli("index", image_folder, "--store", indexed_store, "--model", tiny_model, "--json",
                 "--workers", "0")
    assert (report["added"], report["removed"]) == (1, 1)
    found = cli("similar", added, "-k", "9", "--include-self", "--store", indexed_store, "--json")
    assert found["results"][0]["path"] == str(added.resolve()) and len(found["results"]) == 9
    assert cli("info", "--store", indexed_store, "--json")["index_type"] == "hnsw"
    assert cli("search", "--count", "--store", indexed_store, "--json")["count"] == 9
    checked = cli("check", "--store", indexed_store, "--json")
    assert checked["ok"] and checked["facts"]["index_count"] == 9


def test_reindex_errors(cli: Cli, tmp_path: Path, indexed_store: Path) -> None:
    cli("reindex", "--index-type", "flat", "--store", tmp_path / "none", "--json", expect=5)
    cli("reindex", "--index-type", "lsh", "--store", indexed_store, expect=2)
