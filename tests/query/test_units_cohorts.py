"""Cohorts of series and studies (``unit=``) on the synthetic volume store (real multi-file DICOM series,
the tiny trained SigLIP): members are units with their size, summary, best image and image ids; the run
records its unit and refreshes with it; exports write one row per unit; ``--one-per series`` keeps images.
Over the CLI and real HTTP too."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery

from tests.api_fixtures import running_server

RED = "text:a red circle top 6"  # the class is drawn on 2 slices of each of its 3 series


@pytest.fixture
def store(volumes: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the volume store (cohorts write to it)."""
    copy = tmp_path / "store"
    shutil.copytree(volumes["store"], copy, ignore=shutil.ignore_patterns("*.lock"))
    return copy


@pytest.fixture
def ms(store: Path, volumes: dict[str, Any]) -> Iterator[Medsearch]:
    with Medsearch.open(store, embedder=volumes["embedder"], writable=True) as engine:
        yield engine


def test_a_series_cohort_lists_units_with_their_images(ms: Medsearch, volumes: dict[str, Any]) -> None:
    truth = {spec.series_uid: spec for spec in volumes["specs"]}
    made = ms.cohorts.create("reds", include=[RED], unit="series")
    members = made["members"]
    assert made["unit"] == "series" and made["definition"]["unit"] == "series"
    assert made["count"] == len(members) == len({m["key"] for m in members}) >= 3
    assert made["images"] == 12 * len(members)
    last = made["funnel"][-1]
    assert last["unit"] == "series" and last["count"] == len(members) and made["funnel"][-2]["count"] == 6
    assert sum(len(m["matched"]) for m in members) == 6
    assert sum(truth[m["key"]].label == "red_circle" for m in members[:3]) >= 3 * 0.8
    for m in members:
        spec = truth[m["key"]]
        assert m["size"] == len(m["ids"]) == 12 and m["image_id"] in m["matched"] and set(m["matched"]) <= set(m["ids"])
        assert m["study_instance_uid"] == spec.study_uid and m["modality"] == "OT"
        assert m["study_date"] == f"{spec.study_date[:4]}-{spec.study_date[4:6]}-{spec.study_date[6:]}"
        assert sorted(m["paths"][i] for i in m["ids"]) == sorted(str(p.resolve()) for p in spec.paths)
        assert m["path"] == m["paths"][m["image_id"]]
    scores = [m["score"] for m in members]
    assert scores == sorted(scores, reverse=True)
    shown = ms.cohorts.show("reds")
    assert json.dumps(shown["members"], sort_keys=True) == json.dumps(members, sort_keys=True)


def test_one_per_series_keeps_images_and_finds_the_same_series(ms: Medsearch) -> None:
    units = ms.cohorts.create("as series", include=[RED], unit="series")
    images = ms.cohorts.create("one per series", include=[RED], one_per="series")
    assert "unit" not in images and all("ids" not in m for m in images["members"])
    assert [m["id"] for m in images["members"]] == [m["image_id"] for m in units["members"]]
    assert images["count"] == units["count"]


def test_a_study_cohort_and_its_refresh(ms: Medsearch, volumes: dict[str, Any]) -> None:
    series_per_study: dict[str, int] = {}
    for spec in volumes["specs"]:
        series_per_study[spec.study_uid] = series_per_study.get(spec.study_uid, 0) + 1
    made = ms.cohorts.create("studies", where=["modality = 'OT'"], unit="study")
    assert made["count"] == ms.count(where=["modality = 'OT'"], unit="study") == len(series_per_study)
    assert [m["rank"] for m in made["members"]] == list(range(1, made["count"] + 1))
    assert all(m["size"] == len(m["ids"]) == 12 * series_per_study[m["key"]] for m in made["members"])
    again = ms.cohorts.refresh("studies")
    assert again["unit"] == "study" and again["run"] == 2 and again["count"] == made["count"]
    change = ms.cohorts.diff("studies")
    assert change["joined"] == change["left"] == []
    with pytest.raises(InvalidQuery, match="unknown cohort unit"):
        ms.cohorts.create("bad", include=[RED], unit="patient")


def test_exports_write_one_row_per_unit(ms: Medsearch, tmp_path: Path) -> None:
    made = ms.cohorts.create("reds", include=[RED], unit="series")
    report = ms.cohorts.export("reds", "csv", tmp_path / "reds.csv", ["series_description"])
    with (tmp_path / "reds.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert report["rows"] == len(rows) == made["count"]
    for row, member in zip(rows, made["members"], strict=True):
        assert row["key"] == member["key"] and [int(i) for i in row["ids"].split()] == member["ids"]
        assert int(row["image_id"]) == member["image_id"] and row["series_description"].startswith("volume")
    ms.cohorts.export("reds", "jsonl", tmp_path / "reds.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "reds.jsonl").read_text().splitlines()]
    assert [line["ids"] for line in lines] == [m["ids"] for m in made["members"]]
    ms.cohorts.export("reds", "uids", tmp_path / "reds.uids.csv")
    with (tmp_path / "reds.uids.csv").open() as handle:
        uids = list(csv.DictReader(handle))
    assert [(u["study_instance_uid"], u["series_instance_uid"]) for u in uids] == [
        (m["study_instance_uid"], m["key"]) for m in made["members"]]
    ms.cohorts.export("reds", "links", tmp_path / "links")
    folders = sorted(p for p in (tmp_path / "links").iterdir() if p.is_dir())
    assert [f.name.split("_", 1)[1] for f in folders] == [m["key"] for m in made["members"]]
    assert all(len(list(f.iterdir())) == 12 and all(p.resolve().is_file() for p in f.iterdir()) for f in folders)
    assert json.loads((tmp_path / "links" / "manifest.json").read_text())["unit"] == "series"


def test_cli_cohort_unit(cli: Callable[..., Any], store: Path, volumes: dict[str, Any], tmp_path: Path) -> None:
    model = ["--model", str(volumes["model"])]
    made = cli("cohort", "create", "reds", "--include", RED, "--unit", "series", "--store", store, *model, "--json")
    assert made["unit"] == "series" and all(len(m["ids"]) == 12 for m in made["members"])
    table = cli("cohort", "show", "reds", "--store", store)
    assert f"{made['count']} series" in table.output and made["members"][0]["key"] in table.output
    assert f"reds: {made['count']} series" in cli("cohort", "list", "--store", store).output
    cli("cohort", "export", "reds", "--format", "csv", "-o", tmp_path / "out.csv", "--store", store)
    assert len((tmp_path / "out.csv").read_text().splitlines()) == made["count"] + 1
    bad = cli("cohort", "create", "x", "--include", RED, "--unit", "organ", "--store", store, *model, "--json",
              expect=2)
    assert "unknown cohort unit" in bad["error"]["message"]
    assert "--one-per series" in cli("cohort", "create", "--help").output


def test_http_cohort_of_studies(store: Path, volumes: dict[str, Any]) -> None:
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    app = create_app(store, embedder=volumes["embedder"], settings=ServerSettings())
    with running_server(app) as base:
        made = httpx.post(f"{base}/api/cohorts", json={"name": "s", "include": [RED], "unit": "study"}, timeout=60)
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["unit"] == "study" and all(m["unit"] == "study" and m["ids"] for m in body["members"])
        shown = httpx.get(f"{base}/api/cohorts/s", timeout=60).json()
        assert [m["key"] for m in shown["members"]] == [m["key"] for m in body["members"]]
        exported = httpx.get(f"{base}/api/cohorts/s/export", params={"format": "csv"}, timeout=60)
        rows = list(csv.DictReader(exported.text.splitlines()))
        assert [r["key"] for r in rows] == [m["key"] for m in body["members"]]
        bad = httpx.post(f"{base}/api/cohorts", json={"name": "t", "include": [RED], "unit": "organ"}, timeout=60)
        assert bad.status_code == 422 and "error" in bad.json()
