"""Negation through every door with the trained tiny model, on a gallery of drawn shapes alone and in
pairs: "a red circle without a blue square" ranks red circles without blue squares, where the sentence
embedded as typed ranks blue squares too; the output says what was searched; a query with no content word
is refused alike by the CLI, the Python API and the HTTP API, in English and Korean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery
from medsearch.query.spec import QuerySpec

from tests.language.shape_pairs import write_gallery

Cli = Callable[..., Any]
QUERY = "a red circle without a blue square"


@pytest.fixture(scope="module")
def gallery(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store of 8 images of each shape and each pair of shapes, indexed once: store, path -> shapes."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("shape-pairs")
    shapes = write_gallery(root / "images", per_kind=8, seed=5)
    result = CliRunner().invoke(app, [str(a) for a in ("index", root / "images", "--store", root / "store",
                                                          "--model", trained_model, "--workers", "0")])
    assert result.exit_code == 0, result.output
    return {"store": root / "store", "shapes": shapes}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MEDSEARCH_GLOSSARY", "")
    monkeypatch.setenv("MEDSEARCH_UNKNOWN_WORDS", "")


def test_negated_shape_is_ranked_away_where_the_typed_sentence_ranks_it(gallery: dict[str, Any],
                                                                        settings: None) -> None:
    shapes = gallery["shapes"]
    with Medsearch.open(gallery["store"]) as ms:
        aware = [shapes[hit.path] for hit in ms.search(QUERY, k=8)]
        as_typed = QuerySpec("similar", target="the sentence as typed", k=8)  # ranked by a given vector
        typed = [shapes[hit.path] for hit in ms.queries.run(as_typed, ms.text_vectors([QUERY])[0])]
        assert all("red_circle" in held and "blue_square" not in held for held in aware)
        assert any("blue_square" in held for held in typed)
        negated_only = [shapes[hit.path] for hit in ms.search("no blue square", k=8)]
        assert not any("blue_square" in held for held in negated_only)
        assert ms.searched_as(QUERY).searched == "a red circle; not: a blue square"


def test_a_cohort_criterion_reads_negation_as_a_search_does(gallery: dict[str, Any], settings: None) -> None:
    """``text:`` criteria go through the same parser: the negated shape is never a positive, and a
    probability of a composed text is refused."""
    shapes = gallery["shapes"]
    with Medsearch.open(gallery["store"], writable=True) as ms:
        made = ms.cohorts.create("red-not-blue", include=[f"text:{QUERY} top 8"])
        members = [shapes[member["path"]] for member in made["members"]]
        assert len(members) == 8
        assert all("red_circle" in held and "blue_square" not in held for held in members), members
        with pytest.raises(InvalidQuery, match="negates a finding"):
            ms.cohorts.create("red-not-blue-prob", include=[f"text:{QUERY}>=0.5"])


def test_cli_and_http_say_what_was_searched(cli: Cli, gallery: dict[str, Any], settings: None) -> None:
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    found = cli("search", QUERY, "-k", "5", "--store", gallery["store"], "--json")
    assert (found["searched_as"], found["negated"]) == ("a red circle; not: a blue square", ["a blue square"])
    shown = cli("search", QUERY, "-k", "3", "--store", gallery["store"])
    assert "searched as: a red circle; not: a blue square" in " ".join(shown.stdout.split())
    with TestClient(create_app(gallery["store"], settings=ServerSettings())) as client:
        answer = client.get("/api/search", params={"q": QUERY, "k": 5}).json()
    assert answer["searched_as"] == "a red circle; not: a blue square"
    assert [hit["id"] for hit in answer["results"]] == [hit["id"] for hit in found["results"]]


@pytest.fixture
def client(gallery: dict[str, Any], settings: None) -> Iterator[Any]:
    from fastapi.testclient import TestClient
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    with TestClient(create_app(gallery["store"], settings=ServerSettings())) as test_client:
        yield test_client


@pytest.mark.parametrize("junk", ["the of and", "?", "no", "는 의 가", "없음"])
def test_junk_is_refused_alike_by_every_door(cli: Cli, gallery: dict[str, Any], client: Any, junk: str) -> None:
    refused = cli("search", junk, "--store", gallery["store"], "--json", expect=2)
    message = refused["error"]["message"]
    assert message.startswith(f"no search term in {junk!r}") and "\n" not in message
    answer = client.get("/api/search", params={"q": junk})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == message
    with Medsearch.open(gallery["store"]) as ms, pytest.raises(InvalidQuery) as raised:
        ms.search(junk)
    assert str(raised.value) == message


@pytest.mark.parametrize(("prompt", "finding"), [("no blue square", "blue square"),
                                               ("a red circle without a blue square", "a blue square"),
                                               ("기흉 없음", "pneumothorax")])
def test_a_label_prompt_that_negates_is_refused_alike_by_every_door(cli: Cli, gallery: dict[str, Any], client: Any,
                                                                    prompt: str, finding: str) -> None:
    """Label prompts are read by the query parser too: a negated finding would be scored as present, and a
    label's probability is the model's for plain texts, so the prompt is refused, naming the finding."""
    from medsearch.labels.labelsets import parse_label_list

    labels = f"a red circle;{prompt}"
    refused = cli("classify", "--labels", labels, "--all", "--store", gallery["store"], "--json", expect=2)
    message = refused["error"]["message"]
    assert f"negates {finding!r}" in message and "\n" not in message, message
    answer = client.post("/api/classify", json={"ids": [1], "labels": labels})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == message
    with Medsearch.open(gallery["store"]) as ms, pytest.raises(InvalidQuery) as raised:
        ms.classify(parse_label_list(labels), all_images=True)
    assert str(raised.value) == message
    accepted = cli("classify", "--labels", "a red circle;a blue square", "--all", "--store", gallery["store"],
                   "--json")
    assert accepted["results"], accepted  # the same labels said plainly are scored
