"""The same code on PostgreSQL, by URL: index, incremental re-run, filtered search, sidecar fields,
zero-shot scores and a cohort, against a real server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import write_png


def test_everything_runs_on_postgresql(cli: Callable[..., Any], image_folder: Path, tiny_model: Path,
                                       postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDSEARCH_DATABASE_URL", postgres_url)
    store = tmp_path / "store"
    first = cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    assert (first["added"], first["failed"]) == (9, 1)
    assert not (store / "medsearch.db").exists()
    (image_folder / "png" / "case000.png").unlink()
    write_png(image_folder / "png" / "case001.png", seed=50)
    again = cli("index", image_folder, "--store", store, "--json", "--workers", "0")
    assert (again["added"], again["updated"], again["removed"]) == (0, 1, 1)

    found = cli("search", "x", "-k", "20", "--where", "modality in ('CT', 'MR') and width >= 64", "--store", store,
                "--json")["results"]
    assert {"CT", "MR"} <= {r["metadata"]["modality"] for r in found}
    assert all(r["metadata"]["modality"] in ("CT", "MR") for r in found)
    target = image_folder / "dicom" / "CT_small.dcm"
    similar = cli("similar", target, "-k", "1", "--include-self", "--store", store, "--json")["results"]
    assert similar[0]["path"] == str(target.resolve()) and similar[0]["score"] > 0.9999

    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,effusion,site\n{image_folder / 'photo.jpg'},1,North\n")
    assert cli("import-metadata", labels, "--store", store, "--json")["matched_rows"] == 1
    hits = cli("search", "x", "--where", "effusion = 1 and site like 'north'", "--store", store, "--json")["results"]
    assert [Path(r["path"]).name for r in hits] == ["photo.jpg"]

    cli("classify", "--all", "--labels", "dark;bright", "--save-as", "tone", "--store", store, "--json")
    assert cli("search", "x", "--where", "tone.dark >= 0", "--count", "--store", store, "--json")["count"] == 8
    made = cli("cohort", "create", "tones", "--include", "text:dark top 3", "--store", store, "--json")
    assert len(made["members"]) == 3
    info = cli("info", "--store", store, "--json")
    assert info["images"] == 8 and info["generation"] >= 3

    # the ivf-pq index re-ranks from the 12-bit vectors read back through psycopg
    before = cli("search", "x", "-k", "5", "--where", "width >= 64", "--store", store, "--json")["results"]
    assert cli("reindex", "--index-type", "ivf-pq", "--store", store, "--json")["index_type"] == "ivf-pq"
    after = cli("search", "x", "-k", "5", "--where", "width >= 64", "--store", store, "--json")["results"]
    assert [r["id"] for r in after] == [r["id"] for r in before]
    assert [r["score"] for r in after] == pytest.approx([r["score"] for r in before], abs=1e-5)
    assert cli("upgrade", "--vectors-only", "--store", store, "--json")["vectors"]["converted"] == 0
    assert cli("check", "--store", store, "--json")["facts"]["older_vectors"] == 0

    # an older store's vectors, in the images rows: read there, then moved to their own table
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(
            "UPDATE images SET embedding = v.embedding FROM image_vectors v WHERE v.id = images.id"))
        connection.execute(text("DELETE FROM image_vectors"))
    assert cli("check", "--store", store, "--json")["facts"]["older_vectors"] == 8
    older = cli("search", "x", "-k", "5", "--where", "width >= 64", "--store", store, "--json")["results"]
    assert [r["id"] for r in older] == [r["id"] for r in before]
    assert cli("upgrade", "--vectors-only", "--store", store, "--json")["vectors"]["converted"] == 8
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM image_vectors")).scalar() == 8
    engine.dispose()
    assert cli("check", "--store", store, "--json")["ok"]
    from medsearch.storage.facets import facets
    from medsearch.storage.store import Store

    with Store.open(store) as opened:
        held = opened.vectors.vector_file()
        assert held is not None and held.base is not None  # the re-rank reads a local file, not PostgreSQL
        assert opened.vectors.warm_vectors(threading.Event()) == 8  # so the page cache is warmed with it
        lists = facets(opened)["columns"]  # the page's filter lists, fields of every type counted there
    assert lists["site"]["values"] == [{"value": "North", "count": 1}]
    assert lists["effusion"] == {"kind": "number", "values": [{"value": 1, "count": 1}]}
    assert {value["value"] for value in lists["modality"]["values"]} >= {"CT", "MR"}
    moved = cli("search", "x", "-k", "5", "--where", "width >= 64", "--store", store, "--json")["results"]
    assert [r["score"] for r in moved] == pytest.approx([r["score"] for r in before], abs=1e-5)
