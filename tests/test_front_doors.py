"""The three front doors (Python ``Medsearch``, the CLI, the HTTP API) give the same answer to the same
mistake, because the validation lives once, in ``Medsearch``; on a real store indexed with the tiny model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from medsearch.api import Medsearch
from medsearch.errors import InvalidQuery

from tests.api_fixtures import store_and_client

store, client = store_and_client("front-doors")

STUDY_HINT = "unknown column 'studdy' (did you mean 'study', 'study_date'?)"


@pytest.fixture(scope="module")
def library(store: Path, tiny_embedder: Any) -> Iterator[Medsearch]:
    with Medsearch.open(store, embedder=tiny_embedder) as ms:
        yield ms


def _python_message(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidQuery) as caught:
        call()
    return str(caught.value)


def _http_message(response: Any) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_query"
    return str(response.json()["error"]["message"])


def _cli_message(cli: Callable[..., Any], *args: object) -> str:
    body = cli(*args, "--json", expect=2)
    assert body["error"]["code"] == "invalid_query"
    return str(body["error"]["message"])


def test_an_unknown_group_by_column_is_refused_alike_everywhere(library: Medsearch, client: TestClient,
                                                                 cli: Callable[..., Any], store: Path) -> None:
    python = _python_message(lambda: library.search("x", group_by="studdy"))
    assert python == STUDY_HINT
    assert _http_message(client.get("/api/search", params={"q": "x", "group_by": "studdy"})) == python
    assert _cli_message(cli, "search", "x", "--group-by", "studdy", "--store", store) == python
    similar = _python_message(lambda: library.similar(1, group_by="studdy"))
    assert similar == python
    assert _http_message(client.get("/api/similar/1", params={"group_by": "studdy"})) == python
    assert _cli_message(cli, "similar", "1", "--group-by", "studdy", "--store", store) == python


def test_an_unknown_group_by_without_a_close_name_lists_the_known_ones(library: Medsearch) -> None:
    message = _python_message(lambda: library.search("x", group_by="zzzz"))
    assert message.startswith("unknown column 'zzzz' (known: ") and "'study'" not in message
    assert "modality" in message and "study" in message


def test_the_cli_prints_the_mistake_on_one_line(cli: Callable[..., Any], store: Path) -> None:
    result = cli("search", "x", "--group-by", "studdy", "--store", store, expect=2)
    assert result.stderr.strip() == f"error: {STUDY_HINT}"


def test_a_known_group_and_its_alias_still_group(library: Medsearch) -> None:
    by_column = library.search("x", k=10, group_by="file_format")
    assert {r.group["key"] for r in by_column if r.group} == {"png", "dicom"}
    assert library.group_column("study") == "study_instance_uid"
    assert library.group_column("modality") == "modality"


def test_an_empty_text_is_refused_alike(library: Medsearch, client: TestClient, cli: Callable[..., Any],
                                        store: Path) -> None:
    python = _python_message(lambda: library.search("  "))
    assert python == "the search text is empty"
    assert _http_message(client.get("/api/search", params={"q": "  "})) == python
    assert _cli_message(cli, "search", "  ", "--store", store) == python


def test_a_cohort_one_per_unknown_column_gives_the_same_hint(client: TestClient) -> None:
    response = client.post("/api/cohorts", json={"name": "c", "include": ["where:modality is not null"],
                                                  "one_per": "studdy"})
    assert _http_message(response) == STUDY_HINT


@pytest.mark.parametrize("include_self", [False, True])
def test_similar_leaves_the_query_image_out_alike_unless_asked(library: Medsearch, client: TestClient,
                                                              cli: Callable[..., Any], store: Path,
                                                              include_self: bool) -> None:
    asked: dict[str, Any] = {"include_self": True} if include_self else {}  # the default otherwise
    python = [r.id for r in library.similar(2, k=4, **asked)]
    http = client.get("/api/similar/2", params={"k": 4, **{k: str(v).lower() for k, v in asked.items()}})
    on_cli = cli("similar", "2", "-k", "4", *(["--include-self"] if include_self else []), "--store", store, "--json")
    assert [r["id"] for r in http.json()["results"]] == python
    assert [r["id"] for r in on_cli["results"]] == python
    assert len(python) == 4 and (python[0] == 2) is include_self and (2 in python) is include_self


def test_similar_to_an_indexed_file_leaves_its_image_out_alike(library: Medsearch, cli: Callable[..., Any],
                                                                store: Path) -> None:
    target = store.parent / "images" / "case003.png"
    python = library.similar(target, k=3)
    on_cli = cli("similar", target, "-k", "3", "--store", store, "--json")
    assert [r["id"] for r in on_cli["results"]] == [r.id for r in python]
    assert str(target.resolve()) not in {r.path for r in python} and len(python) == 3
