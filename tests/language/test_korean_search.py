"""Korean through the whole tool, with the tiny model trained on drawn shapes and a test glossary that
adds Korean captions for its classes: search, count, classify and cohorts through the CLI, the Python API
and the HTTP API find what the English captions find, and say what was searched."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.language import Translator
from medsearch.language.glossary import load_glossary

from tests.tiny_siglip import make_caption_images

CAPTIONS = {  # Korean -> the class caption it must find as
    "빨간 원": "red circle",
    "파란 사각형": "blue square",
    "노란 삼각형": "yellow triangle",
    "흰 십자": "white cross",
    "초록 가로 줄무늬": "green horizontal stripes",
}
GLOSSARY = """
[qualifier]
"빨간" = "red"
"파란" = "blue"
"노란" = "yellow"
"흰" = "white"
"초록" = "green"

[finding]
"원" = "circle"
"사각형" = "square"
"삼각형" = "triangle"
"십자" = "cross"
"가로 줄무늬" = "horizontal stripes"
"""

Cli = Callable[..., Any]


@pytest.fixture(scope="module")
def shapes(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store of 6 drawn images per class and the test glossary file, built once."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("korean-shapes")
    images = make_caption_images(root / "images", per_class=6, seed=97)
    glossary = root / "shapes.toml"
    glossary.write_text(GLOSSARY, encoding="utf-8")
    result = CliRunner().invoke(app, [str(a) for a in ("index", root / "images", "--store", root / "store",
                                                          "--model", trained_model, "--workers", "0")])
    assert result.exit_code == 0, result.output
    return {"store": root / "store", "glossary": glossary, "classes": {str(i.path.resolve()): i.class_name
                                                                     for i in images}}


@pytest.fixture
def store(shapes: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the store; the language settings start empty and are restored afterwards."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MEDSEARCH_GLOSSARY", "")
    monkeypatch.setenv("MEDSEARCH_UNKNOWN_WORDS", "")
    copy = tmp_path / "store"
    shutil.copytree(shapes["store"], copy, ignore=shutil.ignore_patterns("*.lock"))
    return copy


def _ids(payload: dict[str, Any]) -> list[int]:
    return [hit["id"] for hit in payload["results"]]


@pytest.mark.parametrize(("korean", "english"), CAPTIONS.items())
def test_korean_caption_finds_the_same_top5_as_the_english(cli: Cli, store: Path, shapes: dict[str, Any],
                                                           korean: str, english: str) -> None:
    found = cli("--glossary", shapes["glossary"], "search", korean, "-k", "5", "--store", store, "--json")
    assert (found["query"], found["searched_as"], found["not_understood"]) == (korean, english, [])
    expected = cli("search", english, "-k", "5", "--store", store, "--json")
    assert _ids(found) == _ids(expected)
    assert [hit["score"] for hit in found["results"]] == [hit["score"] for hit in expected["results"]]


def test_api_caches_by_the_english_and_the_header_says_it(cli: Cli, store: Path, shapes: dict[str, Any]) -> None:
    with Medsearch.open(store, translator=Translator(load_glossary([shapes["glossary"]]))) as ms:
        korean = [hit.id for hit in ms.search("빨간 원", k=5)]
        assert korean == [hit.id for hit in ms.search("red circle", k=5)]
        assert ms.ctx.texts.model_calls == 1 and list(ms.ctx.texts.memory) == ["red circle"]
        assert ms.count("빨간 원", min_prob=0.5) == ms.count("red circle", min_prob=0.5)
    shown = cli("--glossary", shapes["glossary"], "search", "빨간 원", "-k", "3", "--store", store)
    assert "searched as: red circle" in shown.stdout


def test_unknown_words_are_warned_about_or_refused(cli: Cli, store: Path, shapes: dict[str, Any]) -> None:
    warned = cli("--glossary", shapes["glossary"], "search", "빨간 원 양자역학", "--store", store, "--json")
    assert (warned["searched_as"], warned["not_understood"]) == ("red circle", ["양자역학"])
    shown = cli("--glossary", shapes["glossary"], "search", "빨간 원 양자역학", "--store", store)
    assert "not understood, left out: 양자역학" in shown.stderr
    refused = cli("--glossary", shapes["glossary"], "--unknown-words", "refuse", "search", "빨간 원 양자역학",
                  "--store", store, "--json", expect=2)
    assert "양자역학" in refused["error"]["message"]
    cli("--unknown-words", "guess", "search", "원", "--store", store, expect=2)


def test_classify_with_korean_labels_scores_as_the_english(cli: Cli, store: Path, shapes: dict[str, Any]) -> None:
    korean = cli("--glossary", shapes["glossary"], "classify", "--labels", "빨간 원;파란 사각형", "--all",
                 "--store", store, "--json")
    english = cli("classify", "--labels", "red circle;blue square", "--all", "--store", store, "--json")
    assert korean["searched_as"] == {"빨간 원": ["red circle"], "파란 사각형": ["blue square"]}
    assert [list(r["probabilities"].values()) for r in korean["results"]] == \
        [list(r["probabilities"].values()) for r in english["results"]]
    assert list(korean["results"][0]["probabilities"]) == ["빨간 원", "파란 사각형"]
    shown = cli("--glossary", shapes["glossary"], "classify", "--labels", "빨간 원;파란 사각형", "--all",
                "--store", store)
    assert "searched as: 빨간 원 = red circle; 파란 사각형 = blue square" in shown.stdout


def test_cohort_criteria_in_korean(cli: Cli, store: Path, shapes: dict[str, Any]) -> None:
    korean = cli("--glossary", shapes["glossary"], "cohort", "create", "reds", "--include", "text:빨간 원 top 6",
                 "--store", store, "--json")
    english = cli("cohort", "create", "reds-en", "--include", "text:red circle top 6", "--store", store, "--json")
    assert [m["id"] for m in korean["members"]] == [m["id"] for m in english["members"]]
    assert {shapes["classes"][m["path"]] for m in korean["members"]} == {"red_circle"}
    assert korean["searched_as"] == {"빨간 원": "red circle"} and english["searched_as"] == {}


@pytest.fixture
def client(store: Path, shapes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    monkeypatch.setenv("MEDSEARCH_GLOSSARY", str(shapes["glossary"]))
    with TestClient(create_app(store, settings=ServerSettings())) as test_client:
        yield test_client


def test_http_api_says_what_was_searched(client: Any) -> None:
    korean = client.get("/api/search", params={"q": "빨간 원 양자역학", "k": 5}).json()
    english = client.get("/api/search", params={"q": "red circle", "k": 5}).json()
    assert (korean["searched_as"], korean["not_understood"]) == ("red circle", ["양자역학"])
    assert _ids(korean) == _ids(english) and "searched_as" in english
    counted = client.get("/api/search", params={"q": "빨간 원", "count": "true", "min_prob": 0.5}).json()
    assert counted["searched_as"] == "red circle"
    ids = _ids(english)[:2]
    labelled = client.post("/api/classify", json={"ids": ids, "labels": "빨간 원;파란 사각형"}).json()
    assert labelled["searched_as"] == {"빨간 원": ["red circle"], "파란 사각형": ["blue square"]}
    assert client.get("/api/search", params={"q": "양자역학"}).status_code == 400
