"""Every learning command refuses a store of another model (probes and splits made on one, too: CLI,
HTTP and Python); the HTTP routes train a probe from a basket of ids and show a split's counts on a real
server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.api_fixtures import running_server


def test_everything_refuses_another_model(cli: Callable[..., Any], shapes: dict[str, Any], tiny_model: Path) -> None:
    store = shapes["store"]
    for args in (("probe", "train", "red", "--positives", "field:red_circle"), ("audit", "--patient", "patient")):
        refused = cli(*args, "--model", tiny_model, "--store", store, "--json", expect=4)
        assert refused["error"]["code"] == "model_mismatch"

    from medsearch.api import Medsearch
    from medsearch.storage.learn import save_probe
    from medsearch.storage.store import ModelRecord

    with Medsearch.open(store, writable=True) as ms:
        record = ms.store.model_record()
        assert record is not None
        other = ModelRecord("other/model", "abc123", record.dim, record.preprocessing_version)
        save_probe(ms.store, "carried", other, np.zeros(record.dim, np.float32), 0.0, {})
    refused = cli("probe", "apply", "carried", "--store", store, "--json", expect=4)
    assert "other/model" in refused["error"]["message"] and "Train it again" in refused["error"]["message"]
    from medsearch.storage.models import ImageField

    with Medsearch.open(store) as ms, ms.store.read_session() as session:
        assert session.query(ImageField).filter(ImageField.name == "carried").count() == 0


def _as_if_made_on_another_model(store: Path, name: str) -> None:
    """Give split ``name``'s record another model (as if it came from a store of that model)."""
    from medsearch.storage.learn_models import SplitRecord
    from medsearch.storage.store import Store

    with Store.open(store, writable=True) as opened, opened.write_session() as session:
        found = session.get(SplitRecord, name)
        assert found is not None
        found.model_id, found.model_revision = "other/model", "abc123"


def test_a_split_of_another_model_is_refused_and_loses_nothing(cli: Callable[..., Any], shapes: dict[str, Any]) -> None:
    store = shapes["store"]
    cli("cohort", "create", "reds", "--where", "red_circle = 1", "--store", store, "--json")
    cli("split", "fold", "--cohort", "reds", "--ratios", "50/50", "--store", store, "--json")
    _as_if_made_on_another_model(store, "fold")
    runs = cli("cohort", "list", "--store", store, "--json")
    for args in (("split", "fold", "--ratios", "60/40"), ("audit", "--split-field", "fold", "--patient", "patient"),
                 ("cohort", "refresh", "reds")):
        refused = cli(*args, "--store", store, "--json", expect=4)
        assert refused["error"]["code"] == "model_mismatch", args
        message = refused["error"]["message"]
        assert "split 'fold'" in message and "other/model" in message and "\n" not in message
    assert cli("cohort", "list", "--store", store, "--json") == runs  # no run added by the refused refresh
    text = cli("split", "fold", "--store", store, expect=4)
    assert "other/model" in text.stderr and "Traceback" not in text.stderr + text.stdout

    from medsearch.api import Medsearch
    from medsearch.errors import ModelMismatch
    from medsearch.storage.learn import field_counts

    with Medsearch.open(store) as ms:
        with pytest.raises(ModelMismatch, match="Make it again under another name"):
            ms.learning.split_counts("fold")
        assert sorted(field_counts(ms.store, "fold").values()) == [10, 10]  # the field is kept


def test_http_probe_from_a_basket_and_split_counts(cli: Callable[..., Any], shapes: dict[str, Any],
                                                   ids_by_file: Callable[[Path], dict[str, int]]) -> None:
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

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
        _as_if_made_on_another_model(store, "split")
        refused = httpx.get(f"{base}/api/splits/split", timeout=30)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_mismatch"
        missing = httpx.get(f"{base}/api/splits/nope", timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        bad = httpx.post(f"{base}/api/probes", json={"name": "x", "positives": [basket[0], 999999]}, timeout=30)
        assert bad.status_code == 404
