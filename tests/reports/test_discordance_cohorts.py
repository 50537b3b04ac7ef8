"""Discordance cohorts on the trained tiny model: four reports made deliberately wrong (a red circle
reported absent, three other shapes reported as red circles) are exactly the cohort's members, each
with its report label and direction; directions, k, export, refresh; the same members from the CLI (in-
process and a real subprocess), Python and a running server; refusals."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api_fixtures import running_server
from tests.reports.shapes_reports import WRONG, copy_store, import_reports, shapes_reports  # noqa: F401


@pytest.fixture
def wrong(shapes_reports: dict[str, Any], tmp_path: Path) -> dict[str, Any]:  # noqa: F811
    """A copy of the shapes store whose reports are right but for the four in ``WRONG``."""
    built = copy_store(shapes_reports, tmp_path / "store")
    import_reports(built, built["store"], WRONG)
    return built


def _stems(manifest: dict[str, Any]) -> list[str]:
    return [Path(member["path"]).stem for member in manifest["members"]]


def test_the_wrong_reports_are_the_cohort(cli: Callable[..., Any], wrong: dict[str, Any], tmp_path: Path) -> None:
    store, sharp = wrong["store"], wrong["sharp"]
    made = cli("cohort", "create", "review", "--discordant", "red_circle", "--labels-file", sharp, "--store", store,
               "--json")
    assert set(_stems(made)) == set(WRONG) and made["count"] == 4
    by_stem = {Path(m["path"]).stem: m for m in made["members"]}
    assert by_stem["red_circle_004"]["report"] == "negative" and by_stem["red_circle_004"]["disagrees"] == \
        "model-positive" and by_stem["red_circle_004"]["probability"] > 0.5
    for stem in ("black_dot_005", "green_stripes_006", "yellow_triangle_007"):
        assert by_stem[stem]["report"] == "positive" and by_stem[stem]["disagrees"] == "report-positive"
        assert by_stem[stem]["probability"] < 0.5
    scores = [m["score"] for m in made["members"]]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5 and [m["rank"] for m in made["members"]] == \
        [1, 2, 3, 4]
    assert made["funnel"][0]["count"] == 56  # 60 images, the four uncertain reports left out
    assert made["definition"]["discordant"] == {"finding": "red_circle", "direction": "both", "label_set":
                                                "shapes-sharp", "prompts": ["a red circle"], "k": None,
                                                "min_disagreement": 0.5}
    assert made["model"]["id"] and made["store"]["generation"] >= 1 and "calibrated" in made["score_rule"]
    assert made["discordance"]["reports"] == 60

    positive = cli("cohort", "create", "high", "--discordant", "red_circle", "--direction", "model-positive",
                   "--labels-file", sharp, "--store", store, "--json")
    assert _stems(positive) == ["red_circle_004"]
    low = cli("cohort", "create", "low", "--discordant", "red_circle", "--direction", "report-positive", "--k", "2",
              "--labels-file", sharp, "--store", store, "--json")
    assert len(low["members"]) == 2 and set(_stems(low)) < set(WRONG) - {"red_circle_004"}
    assert low["funnel"][-1] == {"step": "the 2 strongest", "count": 2, "removed": 1}

    table = tmp_path / "review.csv"
    cli("cohort", "export", "review", "--format", "csv", "--output", table, "--store", store, "--json")
    rows = list(csv.DictReader(table.open()))
    assert [Path(r["path"]).stem for r in rows] == _stems(made)
    assert {r["report"] for r in rows} == {"positive", "negative"} and "disagrees" in rows[0]
    manifest = json.loads((tmp_path / "review.csv.manifest.json").read_text())
    assert manifest["definition"]["discordant"]["prompts"] == ["a red circle"]

    again = cli("cohort", "refresh", "review", "--store", store, "--json")
    assert again["run"] == 2 and _stems(again) == _stems(made) and "report" in again["members"][0]
    changed = cli("cohort", "diff", "review", "--store", store, "--json")
    assert changed["joined"] == [] and changed["left"] == []
    text = cli("cohort", "show", "review", "--store", store).output
    assert "(report negative, model probability" in text and "red_circle_004" in text


def test_the_same_members_in_a_subprocess_python_and_http(cli: Callable[..., Any], wrong: dict[str, Any]) -> None:
    from medsearch.api import Medsearch
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.labels.labelsets import load_label_set
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    store, sharp = wrong["store"], wrong["sharp"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_STORE", None)
    shown = subprocess.run([sys.executable, "-m", "medsearch.cli", "cohort", "create", "cli", "--discordant",
                            "red_circle", "--labels-file", str(sharp), "--store", str(store)], capture_output=True,
                           text=True, env=env, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "cohort cli run 1" in shown.stdout and "model and report disagree" in shown.stdout
    expected = [m["id"] for m in cli("cohort", "show", "cli", "--store", store, "--json")["members"]]
    assert len(expected) == 4

    with Medsearch.open(store, writable=True) as ms:
        made = ms.cohorts.create_discordant("python", load_label_set(sharp), "red_circle")
    assert [m["id"] for m in made["members"]] == expected

    embedder = load_embedder(str(wrong["model"]), device="cpu")
    request = {"name": "http",
               "discordant": {"finding": "red_circle", "label_prompts": {"red_circle": ["a red circle"]}}}
    with running_server(create_app(store, embedder=embedder, settings=ServerSettings())) as base:
        answer = httpx.post(f"{base}/api/cohorts", json=request, timeout=120)
        assert answer.status_code == 201, answer.text
        assert [m["id"] for m in answer.json()["members"]] == expected
        exported = httpx.get(f"{base}/api/cohorts/http/export", params={"format": "csv"}, timeout=60)
        assert exported.status_code == 200 and "report,disagrees" in exported.text.splitlines()[0]
        mixed = httpx.post(f"{base}/api/cohorts", json={**request, "name": "mixed", "include": ["text:a>=0.5"]},
                           timeout=30)
        assert mixed.status_code == 400 and "without include" in mixed.text
        unknown = httpx.post(f"{base}/api/cohorts", json={"name": "u", "discordant": {
            "finding": "nodule", "label_prompts": {"red_circle": ["a red circle"]}}}, timeout=30)
        assert unknown.status_code == 400 and "'nodule' is not a label" in unknown.text
        bad = httpx.post(f"{base}/api/cohorts", json={"name": "b", "discordant": {
            "finding": "red_circle", "direction": "sideways"}}, timeout=30)
        assert bad.status_code == 422


def test_refusals(cli: Callable[..., Any], shapes_reports: dict[str, Any], wrong: dict[str, Any],  # noqa: F811
                  tmp_path: Path) -> None:
    store, sharp = wrong["store"], wrong["sharp"]
    bare = copy_store(shapes_reports, tmp_path / "bare")["store"]
    none = cli("cohort", "create", "x", "--discordant", "red_circle", "--labels-file", sharp, "--store", bare,
               "--json", expect=2)
    assert "holds no reports" in none["error"]["message"]
    for args, message in ((("--discordant", "nodule"), "'nodule' is not a label"),
                          (("--discordant", "red_circle", "--include", "text:a>=0.5"), "without --include"),
                          (("--discordant", "red_circle", "--direction", "up"), "unknown --direction 'up'"),
                          (("--discordant", "red_circle", "--unit", "series"), "images or studies")):
        refused = cli("cohort", "create", "x", *args, "--labels-file", sharp, "--store", store, "--json", expect=2)
        assert message in refused["error"]["message"]
    assert cli("cohort", "list", "--store", store, "--json")["cohorts"] == []  # nothing half-made
