"""Research cohorts end to end through the CLI, on labelled drawn shapes and a sidecar CSV."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from medsearch.cohorts.criteria import parse_criterion
from medsearch.errors import InvalidQuery

from tests.tiny_siglip import make_caption_images


@pytest.fixture(scope="module")
def labelled_store(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store of 6 images per class, with a sidecar: ``site`` (north/south) and a fake ``patient``
    (two images of a site per patient). Built once; tests work on copies."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("cohort-images")
    images = make_caption_images(root / "images", per_class=6, seed=4321)
    store = root / "store"
    sidecar = root / "sidecar.csv"
    lines = ["file,site,patient,age"] + [f"{img.path.name},{'north' if i % 2 else 'south'},p{i // 4},{40 + i}"
                                         for i, img in enumerate(images)]
    sidecar.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    for args in (["index", root / "images", "--store", store, "--model", trained_model, "--workers", "0"],
                 ["import-metadata", sidecar, "--store", store]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    return {"store": store, "classes": {str(img.path.resolve()): img.class_name for img in images}}


@pytest.fixture
def labelled(labelled_store: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A private copy of ``labelled_store``."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = tmp_path / "store"
    shutil.copytree(labelled_store["store"], store, ignore=shutil.ignore_patterns("*.lock"))
    return {**labelled_store, "store": store, "root": tmp_path}


def test_create_funnel_show_and_exports(cli: Callable[..., Any], labelled: dict[str, Any], tmp_path: Path) -> None:
    store, classes = labelled["store"], labelled["classes"]
    made = cli("cohort", "create", "reds", "--include", "text:a red circle top 12", "--include",
               "text:a red circle score>=-1", "--exclude", "text:a blue square top 2", "--where", "site = 'north'",
               "--one-per", "patient", "--store", store, "--json")
    funnel = made["funnel"]
    assert funnel[0] == {"step": "all images", "count": 36, "removed": 0}
    steps = [s["step"].split(" ")[0].rstrip(":") for s in funnel[1:]]
    assert steps == ["where", "include", "include", "exclude", "one"]
    for before, step in itertools.pairwise(funnel):
        assert step["count"] == before["count"] - step["removed"]
    assert funnel[1]["count"] == 18 and funnel[-1]["count"] == made["count"] == len(made["members"])
    members = made["members"]
    assert all(classes[m["path"]] == "red_circle" for m in members[:2])  # 3 north reds, 2 patients
    scores = [m["score"] for m in members]
    assert scores == sorted(scores, reverse=True) and all(0 < m["probability"] < 1 for m in members)
    assert made["model"]["revision"] and made["model"]["preprocessing_version"] and made["store"]["generation"] >= 1
    assert made["definition"]["where"] == ["site = 'north'"] and made["created_at"].endswith("Z")

    shown = cli("cohort", "show", "reds", "--store", store, "--json")
    assert shown["members"] == members and shown["funnel"] == funnel
    assert cli("cohort", "list", "--store", store, "--json")["cohorts"][0]["count"] == len(members)

    cli("cohort", "export", "reds", "--format", "csv", "--output", tmp_path / "out.csv",
        "--columns", "site,patient,age", "--store", store)
    with (tmp_path / "out.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["id"]) for r in rows] == [m["id"] for m in members]
    assert {r["site"] for r in rows} == {"north"} and len({r["patient"] for r in rows}) == len(rows)
    assert all(r["age"].isdigit() for r in rows), rows  # whole numbers as written, not "41.0"
    assert json.loads((tmp_path / "out.csv.manifest.json").read_text())["members"] == members
    cli("cohort", "export", "reds", "--format", "jsonl", "--output", tmp_path / "out.jsonl", "--columns", "age",
        "--store", store)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [m["id"] for m in members]
    assert all(type(line["age"]) is int for line in lines), lines
    cli("cohort", "export", "reds", "--format", "links", "--output", tmp_path / "links", "--store", store)
    linked = sorted(p for p in (tmp_path / "links").iterdir() if p.name != "manifest.json")
    assert [str(p.resolve()) for p in linked] == [m["path"] for m in members]
    report = cli("cohort", "export", "reds", "--format", "uids", "--output", tmp_path / "uids.csv", "--store", store,
                 "--json")
    assert (report["rows"], report["skipped"]) == (0, len(members))  # PNGs carry no DICOM UIDs


def test_refresh_reproduces_and_diff_names_new_members(cli: Callable[..., Any], labelled: dict[str, Any],
                                                       trained_model: Path) -> None:
    store, root = labelled["store"], labelled["root"]
    probe = cli("cohort", "create", "probe", "--include", "text:a blue square top 6", "--store", store, "--json")
    floor = probe["members"][-1]["score"] - 0.02
    made = cli("cohort", "create", "blues", "--include", f"text:a blue square score>={floor}", "--store", store,
               "--json")
    assert made["count"] >= 6
    same = cli("cohort", "refresh", "blues", "--store", store, "--json")
    assert same["members"] == made["members"] and same["run"] == 2
    assert cli("cohort", "diff", "blues", "--store", store, "--json")["joined"] == []

    extra = make_caption_images(root / "more", per_class=4, seed=99)
    cli("index", root / "more", "--store", store, "--json", "--workers", "0")
    grown = cli("cohort", "refresh", "blues", "--store", store, "--json")
    change = cli("cohort", "diff", "blues", "--store", store, "--json")
    new_paths = {str(img.path.resolve()) for img in extra}
    old_ids = {m["id"] for m in made["members"]}
    assert change["left"] == [] and change["previous_run"] == 2
    assert {m["id"] for m in change["joined"]} == {m["id"] for m in grown["members"]} - old_ids
    assert change["joined"] and all(m["path"] in new_paths for m in change["joined"])
    assert sum(Path(p).name.startswith("blue_square") for p in (m["path"] for m in change["joined"])) >= 3

    cli("cohort", "delete", "blues", "--store", store)
    cli("cohort", "show", "blues", "--store", store, expect=6)


def test_near_duplicates_collapse_into_the_best(cli: Callable[..., Any], labelled: dict[str, Any]) -> None:
    store = labelled["store"]
    made = cli("cohort", "create", "dots", "--include", "text:a black dot on white top 6", "--near-duplicates",
               "-1", "--store", store, "--json")
    best = made["members"][0]["id"]
    assert made["count"] == 1 and len(made["collapsed"]) == 5
    assert {c["into"] for c in made["collapsed"]} == {best}
    assert made["funnel"][-1] == {"step": "near-duplicates cosine>-1.0", "count": 1, "removed": 5}


@pytest.mark.parametrize("criterion, message", [
    ("pleural effusion>=0.6", "must start with text:"),
    ("text:pleural effusion", "needs a subject and a threshold"),
    ("text:pleural effusion>=1.5", "strictly between 0 and 1"),
    ("image:ref.png prob>=0.5", "a probability needs a text"),
    ("text:x top zero", "whole number"),
    ("id:abc>=0.9", "take an image id"),
    ("text:x score>=high", "not a number"),
])
def test_criteria_syntax_errors(criterion: str, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        parse_criterion(criterion)


def test_criteria_parse() -> None:
    assert parse_criterion("text:pleural effusion>=0.6").measure == "prob"
    assert parse_criterion("text:chest tube score>=0.25").threshold == 0.25
    assert parse_criterion("image:ref.dcm>=0.9").measure == "score"
    top = parse_criterion("text:pleural effusion top 50")
    assert (top.value, top.top) == ("pleural effusion", 50)


def test_cli_errors_exit_2(cli: Callable[..., Any], labelled: dict[str, Any]) -> None:
    store = labelled["store"]
    bad = cli("cohort", "create", "x", "--include", "text:red", "--store", store, "--json", expect=2)
    assert bad["error"]["code"] == "invalid_query" and "threshold" in bad["error"]["message"]
    cli("cohort", "create", "x", "--where", "site = 'north'", "--one-per", "nosuch", "--store", store, expect=2)
    cli("cohort", "create", "x", "--where", "site = 'north'", "--store", store)
    cli("cohort", "create", "x", "--where", "site = 'north'", "--store", store, expect=2)  # name taken


def test_python_door_gives_the_cli_answers(cli: Callable[..., Any], labelled: dict[str, Any], tmp_path: Path) -> None:
    """``ms.cohorts`` is the door the CLI uses: the same members, list, diff, export, and the same refusal."""
    from medsearch.api import Medsearch

    store = labelled["store"]
    by_cli = cli("cohort", "create", "cli", "--include", "text:a red circle top 5", "--store", store, "--json")
    with Medsearch.open(store, writable=True) as ms:
        made = ms.cohorts.create("py", include=["text:a red circle top 5"])
        assert [m["id"] for m in made["members"]] == [m["id"] for m in by_cli["members"]]
        assert ms.cohorts.show("py")["members"] == made["members"]
        assert sorted(c["name"] for c in ms.cohorts.list()) == ["cli", "py"]
        assert ms.cohorts.refresh("py")["run"] == 2
        assert ms.cohorts.diff("py")["joined"] == []
        report = ms.cohorts.export("py", "jsonl", tmp_path / "py.jsonl")
        assert report["rows"] == len(made["members"])
        with pytest.raises(InvalidQuery) as refused:
            ms.cohorts.create("bad", include=["text:a red circle top 5"], one_per="patiant")
        ms.cohorts.delete("py")
        assert [c["name"] for c in ms.cohorts.list()] == ["cli"]
    by_cli_error = cli("cohort", "create", "bad", "--include", "text:a red circle top 5", "--one-per", "patiant",
                       "--store", store, "--json", expect=2)
    assert by_cli_error["error"]["message"] == str(refused.value)
