"""``--unit``, ``--sort date`` and ``medsearch timeline`` on the CLI, and ``unit=`` / ``/api/timeline`` over
real HTTP (uvicorn on loopback), on the synthetic volume store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api_fixtures import running_server


def test_cli_search_and_similar_at_unit_series_give_one_row_per_series(cli: Callable[..., Any], volumes: dict) -> None:
    store, truth = volumes["store"], {s.series_uid: s.label for s in volumes["specs"]}
    model = ["--model", str(volumes["model"])]
    found = cli("search", "a red circle", "--unit", "series", "-k", "3", "--store", store, *model, "--json")
    keys = [r["key"] for r in found["results"]]
    assert len(set(keys)) == 3 and sum(truth[k] == "red_circle" for k in keys) >= 2
    assert all(r["unit"] == "series" and r["size"] == 12 and len(r["ids"]) == 12 for r in found["results"])
    similar = cli("similar", keys[0], "--unit", "series", "-k", "2", "--store", store, *model, "--json")
    assert keys[0] not in [r["key"] for r in similar["results"]]
    count = cli("search", "a red circle", "--unit", "study", "--count", "--store", store, *model, "--json")
    assert count["count"] == len({s.study_uid for s in volumes["specs"]})
    dated = cli("search", "a red circle", "--min-score", "-1", "--sort", "date", "-k", "5", "--store", store,
                *model, "--json")
    dates = [r["metadata"]["study_date"] for r in dated["results"]]
    assert len(dates) == 5 and dates == sorted(dates, reverse=True)
    bad = cli("search", "a red circle", "--unit", "patient", "--store", store, *model, "--json", expect=2)
    assert "unknown unit" in bad["error"]["message"]


def test_cli_timeline(cli: Callable[..., Any], volumes: dict) -> None:
    spec = volumes["specs"][0]
    line = cli("timeline", spec.series_uid, "--store", volumes["store"], "--json")
    assert [s["study_date"] for s in line["studies"]] == sorted(s["study_date"] for s in line["studies"])
    assert spec.patient_id not in str(line)
    table = cli("timeline", spec.series_uid, "--store", volumes["store"])
    assert "timeline of" in table.output and "Traceback" not in table.output


@pytest.fixture(scope="module")
def base(volumes: dict) -> Iterator[str]:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    with running_server(create_app(volumes["store"], embedder=volumes["embedder"], settings=ServerSettings())) as url:
        yield url


def test_http_unit_search_similar_and_timeline(base: str, volumes: dict) -> None:
    found = httpx.get(f"{base}/api/search", params={"q": "a blue square", "unit": "series", "k": 3}, timeout=60).json()
    assert found["unit"] == "series" and len({r["key"] for r in found["results"]}) == 3
    image_id = found["results"][0]["image_id"]
    similar = httpx.get(f"{base}/api/similar/{image_id}", params={"unit": "series", "k": 2}, timeout=60).json()
    assert len(similar["results"]) == 2 and found["results"][0]["key"] not in [r["key"] for r in similar["results"]]
    line = httpx.get(f"{base}/api/timeline", params={"id": image_id, "q": "a blue square"}, timeout=60).json()
    assert sum(s["current"] for s in line["studies"]) == 1
    assert image_id in {i for s in line["studies"] for i in s["ids"]}
    counted = httpx.get(f"{base}/api/search", params={"q": "a blue square", "unit": "series", "count": "true"},
                        timeout=60).json()
    assert counted["count"] == len(volumes["specs"])
    missing = httpx.get(f"{base}/api/timeline", params={"id": "1.2.3"}, timeout=60)
    bad = httpx.get(f"{base}/api/search", params={"q": "x", "unit": "organ"}, timeout=60)
    assert missing.status_code == 404 and bad.status_code == 400 and "error" in bad.json()


def test_http_upload_ranks_series_as_python_does(base: str, volumes: dict) -> None:
    """``POST /api/similar`` with ``unit``: the series closest to an uploaded slice, one row each, the same
    series as ``Medsearch.similar(unit=...)`` of the same file gives; as a query parameter or a form field."""
    from medsearch.api import Medsearch

    spec = next(s for s in volumes["specs"] if s.label is not None)
    slice_path = spec.paths[5]  # one of the two slices that show the series' class
    data = slice_path.read_bytes()
    as_query = httpx.post(f"{base}/api/similar", params={"unit": "series", "k": 4},
                          files={"file": ("slice.dcm", data)}, timeout=120).json()
    as_form = httpx.post(f"{base}/api/similar", data={"unit": "series", "k": "4", "unit_method": "late"},
                         files={"file": ("slice.dcm", data)}, timeout=120).json()
    with Medsearch.open(volumes["store"], embedder=volumes["embedder"]) as ms:
        python = ms.similar(slice_path, 4, unit="series")
    truth = {s.series_uid: s.label for s in volumes["specs"]}
    for answer in (as_query, as_form):
        keys = [r["key"] for r in answer["results"]]
        assert answer["unit"] == "series" and len(set(keys)) == 4 and all(r["unit"] == "series" for r in
                                                                         answer["results"])
        assert keys == [r.key for r in python]
        assert sum(truth[key] == spec.label for key in keys[:3]) >= 2  # the series sharing the class first
    images = httpx.post(f"{base}/api/similar", params={"k": 3}, files={"file": ("slice.dcm", data)},
                        timeout=120).json()
    assert "unit" not in images and len(images["results"]) == 3
    dated = httpx.post(f"{base}/api/similar", params={"k": 5, "min_score": -1, "sort": "date"},
                       files={"file": ("slice.dcm", data)}, timeout=120).json()
    dates = [r["metadata"]["study_date"] for r in dated["results"]]
    assert dates == sorted(dates, reverse=True) and len(dates) == 5
    for params, words in (({"unit": "organ"}, "unit"), ({"sort": "date"}, "threshold"),
                          ({"unit": "series", "group_by": "patient"}, "group_by")):
        refused = httpx.post(f"{base}/api/similar", params=params, files={"file": ("slice.dcm", data)},
                             timeout=120)
        assert refused.status_code == 400 and words in refused.json()["error"]["message"], params


def test_cli_server_mode_takes_unit_and_sort(cli: Callable[..., Any], base: str, volumes: dict) -> None:
    """``--server`` passes ``--unit``, ``--unit-method`` and ``--sort`` on, and prints what the local run
    prints for the same question."""
    store, model = volumes["store"], ["--model", str(volumes["model"])]
    spec = next(s for s in volumes["specs"] if s.label is not None)
    questions = [
        ("search", "a red circle", "--unit", "series", "-k", "3"),
        ("search", "a red circle", "--unit", "study", "--unit-method", "mean", "-k", "2"),
        ("search", "a red circle", "--min-score", "-1", "--sort", "date", "-k", "4"),
        ("similar", str(spec.paths[5]), "--unit", "series", "-k", "3"),
        ("similar", "1", "--unit", "study", "-k", "2"),
    ]
    for question in questions:
        local = cli(*question, "--store", store, *model, "--json")
        remote = cli(*question, "--server", base, "--json")
        key = "key" if "--unit" in question else "id"
        assert [r[key] for r in remote["results"]] == [r[key] for r in local["results"]] and remote["results"], question
        for mine, theirs in zip(local["results"], remote["results"], strict=True):
            assert theirs["score"] == pytest.approx(mine["score"], abs=5e-4)  # an upload is embedded afresh
    table = cli("search", "a red circle", "--unit", "series", "-k", "2", "--server", base)
    assert "series" in table.output and "Traceback" not in table.output
    refused = cli("similar", spec.series_uid, "--unit", "series", "--server", base, "--json", expect=2)
    assert "without --server" in refused["error"]["message"]
