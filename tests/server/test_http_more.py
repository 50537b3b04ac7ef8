"""The HTTP API's grouping, counting, composed queries, zero-shot labels and cohorts, through real
requests (TestClient) on a store indexed with the tiny model; results are checked against the library."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from medsearch.server.app import create_app
from medsearch.server.deps import ServerSettings

from tests.api_fixtures import store_and_client

store, client = store_and_client("api-more")


@pytest.fixture(scope="module")
def library(store: Path, tiny_embedder: Any) -> Iterator[Any]:
    from medsearch.api import Medsearch

    with Medsearch.open(store, embedder=tiny_embedder) as ms:
        yield ms


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _error(response: Any, status: int, code: str) -> str:
    body = response.json()
    assert response.status_code == status, response.text
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    assert set(body["error"]) <= {"code", "message", "position"}
    return str(body["error"]["message"])


def test_group_by_a_column_gives_one_result_per_group(client: TestClient) -> None:
    results = _ok(client.get("/api/search", params={"q": "x", "k": 10, "group_by": "file_format"}))["results"]
    groups = {r["group"]["key"]: r["group"] for r in results}
    assert set(groups) == {"png", "dicom"} and len(results) == 2
    assert groups["png"]["size"] == 6 and groups["dicom"]["size"] == 3
    assert all(r["metadata"]["file_format"] == r["group"]["key"] for r in results)
    plain = _ok(client.get("/api/search", params={"q": "x", "k": 10}))["results"]
    assert "group" not in plain[0] and plain[0]["id"] == results[0]["id"]
    _error(client.get("/api/search", params={"q": "x", "group_by": "no_such_column"}), 400, "invalid_query")


def test_count_answers_only_the_number(client: TestClient) -> None:
    assert _ok(client.get("/api/search", params={"q": "x", "count": "true"})) == {"count": 9}
    assert _ok(client.get("/api/search", params={"q": "x", "count": "true", "where": "modality = 'CT'"})) == {
        "count": 1}
    ranked = _ok(client.get("/api/search", params={"q": "x", "k": 20}))["results"]
    cut = ranked[3]["score"]
    assert _ok(client.get("/api/search", params={"q": "x", "count": "true", "min_score": cut})) == {"count": 4}
    _error(client.get("/api/search", params={"q": "x", "count": "true", "group_by": "study"}), 400,
           "invalid_query")


def test_composed_parts_match_the_library(client: TestClient, library: Any) -> None:
    params = {"q": "a round shape", "like": ["id:3@0.5", "bright"], "unlike": ["a dark square"], "k": 9}
    got = _ok(client.get("/api/search", params=params))["results"]
    expected = library.search("a round shape", k=9, like=["id:3@0.5", "bright"], unlike=["a dark square"])
    assert [r["id"] for r in got] == [r.id for r in expected]
    assert [r["score"] for r in got] == pytest.approx([r.score for r in expected], abs=1e-5)
    plain = _ok(client.get("/api/search", params={"q": "a round shape", "k": 9}))["results"]
    assert [r["score"] for r in plain] != pytest.approx([r["score"] for r in got], abs=1e-5)
    only_id = _ok(client.get("/api/search", params={"like": "id:3", "k": 2}))["results"]
    assert only_id[0]["id"] == 3 and only_id[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert "probability" not in only_id[0]


@pytest.mark.parametrize("params", [
    {"q": "image:/etc/hostname"}, {"q": "x", "like": "image:/etc/hostname"}, {"q": "x", "unlike": "image:a.png"},
    {"like": "id:abc"}, {"unlike": "x"}, {},
])
def test_composed_parts_refused(client: TestClient, params: dict[str, str]) -> None:
    _error(client.get("/api/search", params=params), 400, "invalid_query")


def test_similar_takes_filters_and_groups(client: TestClient) -> None:
    dicom = _ok(client.get("/api/similar/7", params={"k": 9, "where": "file_format = 'dicom'"}))["results"]
    assert len(dicom) == 3 and all(r["metadata"]["file_format"] == "dicom" for r in dicom)
    everything = _ok(client.get("/api/similar/7", params={"k": 9}))["results"]
    above = _ok(client.get("/api/similar/7", params={"k": 9, "min_score": everything[1]["score"]}))["results"]
    assert [r["id"] for r in above] == [r["id"] for r in everything[:2]]
    grouped = _ok(client.get("/api/similar/7", params={"k": 9, "group_by": "file_format",
                                                       "include_self": True}))["results"]
    assert len(grouped) == 2 and grouped[0]["id"] == 7 and grouped[0]["group"]["by"] == "file_format"
    without = _ok(client.get("/api/similar/7", params={"k": 9, "group_by": "file_format"}))["results"]
    assert 7 not in [r["id"] for r in without] + [i for r in without for i in r["group"]["ids"]]


def test_label_sets_lists_the_builtins(client: TestClient) -> None:
    from medsearch.labels.labelsets import load_label_set

    sets = {s["name"]: s for s in _ok(client.get("/api/label-sets"))["label_sets"]}
    assert {"cxr-findings", "skin-lesions"} <= set(sets)
    cxr = load_label_set("cxr-findings")
    assert [label["name"] for label in sets["cxr-findings"]["labels"]] == list(cxr.names)
    assert sets["cxr-findings"]["description"] == cxr.description


def test_classify_ids_like_the_cli(client: TestClient, library: Any) -> None:
    from medsearch.labels.labelsets import parse_label_list
    from medsearch.labels.zeroshot import NOTE

    body = _ok(client.post("/api/classify", json={"ids": [5, 1, 8], "labels": "a round shape;a dark square"}))
    assert body["note"] == NOTE and body["labels"] == ["a round shape", "a dark square"]
    assert [r["id"] for r in body["results"]] == [5, 1, 8]
    expected = library.classify(parse_label_list("a round shape;a dark square"), ["5", "1", "8"])
    for got, want in zip(body["results"], expected, strict=True):
        assert set(got["probabilities"]) == {"a round shape", "a dark square"}
        assert all(0.0 < p < 1.0 for p in got["probabilities"].values())
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)
        assert {"present", "uncertain", "needs_review", "path"} <= set(got)
    exclusive = _ok(client.post("/api/classify", json={"ids": [2], "labels": "circle;square;line", "exclusive": True}))
    assert sum(exclusive["results"][0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


def test_classify_with_a_label_set_and_prompt_ensembles(client: TestClient, library: Any) -> None:
    from medsearch.labels.labelsets import Label, LabelSet, load_label_set

    body = _ok(client.post("/api/classify", json={"ids": [1, 2], "labels_set": "cxr-findings"}))
    assert body["labels"] == list(load_label_set("cxr-findings").names) and len(body["results"]) == 2
    prompts = {"round": ["a round shape", "a circle"], "square": ["a square"]}
    ensemble = _ok(client.post("/api/classify", json={"ids": [4], "label_prompts": prompts}))
    alone = _ok(client.post("/api/classify", json={"ids": [4], "labels": "a round shape;a square"}))
    assert ensemble["results"][0]["probabilities"]["square"] == pytest.approx(
        alone["results"][0]["probabilities"]["a square"], abs=1e-6)
    labels = LabelSet(tuple(Label(name, tuple(texts)) for name, texts in prompts.items()))
    expected = library.classify(labels, ["4"])[0].probabilities
    assert ensemble["results"][0]["probabilities"] == pytest.approx(expected, rel=1e-4, abs=1e-9)


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"ids": [1, 999999], "labels": "a;b"}, 404, "not_found"),
    ({"ids": [1], "labels": " ; "}, 400, "invalid_query"),
    ({"ids": [1], "labels": "a;a"}, 400, "invalid_query"),
    ({"ids": [1]}, 400, "invalid_query"),
    ({"ids": [1], "labels": "a", "labels_set": "cxr-findings"}, 400, "invalid_query"),
    ({"ids": [1], "labels_set": "../../etc/passwd.toml"}, 400, "invalid_query"),
    ({"ids": [1], "labels_set": "no-such-set"}, 400, "invalid_query"),
    ({"ids": [1], "label_prompts": {"x": []}}, 400, "invalid_query"),
    ({"ids": [], "labels": "a"}, 422, "invalid_request"),
    ({"ids": ["/etc/passwd"], "labels": "a"}, 422, "invalid_request"),
])
def test_classify_errors(client: TestClient, payload: dict[str, Any], status: int, code: str) -> None:
    _error(client.post("/api/classify", json=payload), status, code)


def test_cohort_create_list_show_export_delete(client: TestClient, store: Path) -> None:
    from medsearch.storage.store import Store

    definition = {"name": "round ones", "include": ["text:a round shape top 6"], "exclude": ["id:4>=0.999"],
                  "where": ["file_format = 'png'"]}
    with Store.open(store, writable=True):  # an indexer holds the writer lock: cohorts still work
        made = _ok(client.post("/api/cohorts", json=definition), 201)
    ids = [m["id"] for m in made["members"]]
    assert made["count"] == len(ids) == 5 and 4 not in ids and [f["step"] for f in made["funnel"]]
    assert [c["name"] for c in _ok(client.get("/api/cohorts"))["cohorts"]] == ["round ones"]
    shown = _ok(client.get("/api/cohorts/round ones"))
    assert [m["id"] for m in shown["members"]] == ids and shown["definition"]["where"] == definition["where"]
    exported = client.get("/api/cohorts/round ones/export", params={"format": "csv", "columns": "modality"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="round_ones.csv"' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["id"]) for row in rows] == ids and "modality" in rows[0]
    lines = client.get("/api/cohorts/round ones/export", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    uids = client.get("/api/cohorts/round ones/export", params={"format": "uids"}).text.splitlines()
    assert uids == ["study_instance_uid,series_instance_uid,sop_instance_uid"]  # PNG members have none
    assert _ok(client.delete("/api/cohorts/round ones")) == {"deleted": "round ones"}
    _error(client.get("/api/cohorts/round ones"), 404, "not_found")
    assert _ok(client.get("/api/cohorts")) == {"cohorts": []}


def test_cohort_errors(client: TestClient) -> None:
    good = {"name": "kept", "where": ["file_format = 'dicom'"]}
    assert _ok(client.post("/api/cohorts", json=good), 201)["count"] == 3
    _error(client.post("/api/cohorts", json=good), 400, "invalid_query")
    for bad in ({"name": "f", "include": ["image:/etc/hostname>=0.5"]}, {"name": "n"},
                {"name": "c", "include": ["pleural effusion"]}, {"name": "w", "where": ["modality = "]}):
        _error(client.post("/api/cohorts", json=bad), 400, "invalid_query")
    _error(client.post("/api/cohorts", json={"include": ["text:x top 1"]}), 422, "invalid_request")
    for fmt in ("links", "xml"):
        _error(client.get("/api/cohorts/kept/export", params={"format": fmt}), 400, "invalid_query")
    _error(client.get("/api/cohorts/kept/export", params={"columns": "no_such"}), 400, "invalid_query")
    _error(client.get("/api/cohorts/missing/export"), 404, "not_found")
    _error(client.delete("/api/cohorts/missing"), 404, "not_found")
    _ok(client.delete("/api/cohorts/kept"))


def test_new_routes_need_the_token(store: Path, tiny_embedder: Any) -> None:
    settings = ServerSettings(api_token="s3cret")
    with TestClient(create_app(store, embedder=tiny_embedder, settings=settings)) as guarded:
        requests = [("get", "/api/label-sets", None), ("post", "/api/classify", {"ids": [1], "labels": "a"}),
                    ("get", "/api/cohorts", None), ("post", "/api/cohorts", {"name": "x", "where": ["id > 0"]}),
                    ("get", "/api/cohorts/x/export", None), ("delete", "/api/cohorts/x", None),
                    ("get", "/api/search?q=x&count=true", None)]
        for method, url, payload in requests:
            _error(guarded.request(method, url, json=payload), 401, "unauthorized")
        allowed = guarded.get("/api/label-sets", headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200
