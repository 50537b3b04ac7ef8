"""Every learning command refuses a store of another model; the HTTP routes train a probe from a basket of
ids and show a split's counts on a real server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.api_fixtures import running_server


def test_everything_refuses_another_model(cli: Callable[..., Any], shapes: dict[str, Any], tiny_model: Path) -> None:
    store = shapes["store"]
    for args in (("probe", "train", "red", "--positives", "field:red_circle"), ("audit", "--patient", "patient")):
        refused = cli(*args, "--model", tiny_model, "--store", store, "--json", expect=4)
        assert refused["error"]["code"] == "model_mismatch"

    from search.api import Medsearch
    from storage.learn import save_probe
    from storage.store import ModelRecord

    with Medsearch.open(store, writable=True) as ms:
        record = ms.store.model_record()
        assert record is not None
        other = ModelRecord("other/model", "abc123", record.dim, record.preprocessing_version)
        save_probe(ms.store, "carried", other, np.zeros(record.dim, np.float32), 0.0, {})
    refused = cli("probe", "apply", "carried", "--store", store, "--json", expect=4)
    assert "other/model" in refused["error"]["message"] and "Train it again" in refused["error"]["message"]
    from storage.models import ImageField

    with Medsearch.open(store) as ms, ms.store.read_session() as session:
        assert session.query(ImageField).filter(ImageField.name == "carried").count() == 0


def test_http_probe_from_a_basket_and_split_counts(cli: Callable[..., Any], shapes: dict[str, Any],
                                                   ids_by_file: Callable[[Path], dict[str, int]]) -> None:
    from indexer.model_loading import load_embedder
    from search.server.app import create_app
    from search.server.deps import ServerSettings

    store, ids = shapes["store"], ids_by_file(shapes["store"])
    made = cli("split", "split", "--ratios", "70/15/15", "--store", store, "--json")
    basket = [ids[r["file"]] for r in shapes["rows"] if r["yellow_triangle"] and r["half"] == "train"]
    embedder = load_embedder(str(shapes["model"]), device="cpu")
    with running_server(create_app(store, embedder=embedder, settings=ServerSettings())) as base:
        answer = httpx.post(f"{base}/api/probes", json={"name": "yellow", "positives": basket, "k": 10,
                                                        "prompt": "a yellow triangle"}, timeout=120)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["positives"] == 10 and body["negatives"] == 110 and "fold_ids" not in body
        more = body["more_like_these"]
        classes = {ids[img.path.name]: img.class_name for img in shapes["images"]}
        assert len(more) == 10 and not set(basket) & {m["id"] for m in more}
        assert sum(classes[m["id"]] == "yellow_triangle" for m in more) >= 8
        listed = httpx.get(f"{base}/api/probes", timeout=30).json()["probes"]
        assert [p["name"] for p in listed] == ["yellow"]

        counts = httpx.get(f"{base}/api/splits/split", timeout=30).json()
        assert counts["images"] == {k: v for k, v in sorted(made["images"].items())}
        assert counts["record"]["definition"]["by"] == "patient"
        missing = httpx.get(f"{base}/api/splits/nope", timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = httpx.post(f"{base}/api/probes", json={"name": "x", "positives": [basket[0], 999999]}, timeout=30)
        assert bad.status_code == 404
