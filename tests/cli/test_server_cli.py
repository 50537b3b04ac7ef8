"""``--server URL``: ``search``, ``search --count`` and ``similar`` answered by a real running server
(uvicorn on loopback, a bearer token), printing what the local path prints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_fixtures import free_port, running_server, store_with_sites

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Iterator[dict[str, Any]]:
    from medsearch.indexer.model_loading import load_embedder
    from medsearch.server.app import create_app
    from medsearch.server.deps import ServerSettings

    embedder = load_embedder(str(tiny_model), device="cpu")  # the model the store records: the CLI loads it too
    base = tmp_path_factory.mktemp("server-cli")
    images = store_with_sites(base, embedder)
    app = create_app(base / "store", embedder=embedder, settings=ServerSettings(api_token=TOKEN))
    with running_server(app) as url:
        yield {"url": url, "store": base / "store", "images": images}


@pytest.fixture
def remote_cli(cli: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MEDSEARCH_API_TOKEN", TOKEN)
    return cli


def _same(local: list[dict[str, Any]], remote: list[dict[str, Any]]) -> None:
    assert [r["id"] for r in remote] == [r["id"] for r in local] and remote
    assert [r["rank"] for r in remote] == [r["rank"] for r in local]
    for mine, theirs in zip(local, remote, strict=True):
        # an indexed file's stored vector is 12-bit (medsearch.storage.vector_codec); an upload is embedded afresh
        assert theirs["score"] == pytest.approx(mine["score"], abs=5e-4)
        assert (theirs["path"], theirs["metadata"], theirs["fields"]) == (mine["path"], mine["metadata"],
                                                                          mine["fields"])


@pytest.mark.parametrize("args", [
    ["a scan", "-k", "5"],
    ["a scan", "--where", "site = 'north'", "--where", "file_format = 'png'"],
    ["a scan", "--group-by", "site", "--where", "site is not null"],
    ["a scan", "-k", "2", "--offset", "2", "--min-score", "-1"],
])
def test_search_through_the_server_answers_as_locally(remote_cli: Any, served: dict[str, Any],
                                                      args: list[str]) -> None:
    local = remote_cli("search", *args, "--store", served["store"], "--json")
    remote = remote_cli("search", *args, "--server", served["url"], "--json")
    _same(local["results"], remote["results"])
    assert remote["query"] == local["query"]
    assert [r.get("group") for r in remote["results"]] == [r.get("group") for r in local["results"]]


def test_table_count_and_paths_match(remote_cli: Any, served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    store = served["store"]
    for extra in ([], ["--paths"], ["--count"], ["--count", "--where", "site = 'south'"]):
        local = remote_cli("search", "a scan", *extra, "--store", store).stdout
        monkeypatch.setenv("MEDSEARCH_SERVER", served["url"])
        remote = remote_cli("search", "a scan", *extra).stdout
        monkeypatch.delenv("MEDSEARCH_SERVER")
        assert remote == local


def test_similar_through_the_server(remote_cli: Any, served: dict[str, Any]) -> None:
    store, url, image = served["store"], served["url"], served["images"] / "case002.png"
    first = remote_cli("search", "a scan", "-k", "1", "--store", store, "--json")["results"][0]["id"]
    for target in (str(first), image):
        for extra in ([], ["--include-self"], ["--offset", "1", "-k", "3"], ["--where", "site = 'north'"]):
            local = remote_cli("similar", target, *extra, "--store", store, "--json")["results"]
            remote = remote_cli("similar", target, *extra, "--server", url, "--json")["results"]
            _same(local, remote)


def test_server_errors_are_one_line(cli: Any, remote_cli: Any, served: dict[str, Any],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bad = remote_cli("search", "a scan", "--where", "sitee = 'x'", "--server", served["url"], expect=2)
    local = remote_cli("search", "a scan", "--where", "sitee = 'x'", "--store", served["store"], expect=2)
    assert bad.output == local.output and "did you mean 'site'" in bad.output  # the caret lines included
    missing = remote_cli("similar", "999999", "--server", served["url"], "--json", expect=6)
    assert missing["error"]["code"] == "not_found"
    monkeypatch.setenv("MEDSEARCH_API_TOKEN", "wrong")
    refused = cli("search", "a scan", "--server", served["url"], expect=5)
    assert refused.output.startswith("error: ") and refused.output.count("\n") == 1
    gone = cli("search", "a scan", "--server", f"http://127.0.0.1:{free_port()}", expect=1)
    assert gone.output.startswith("error: cannot reach the medsearch server") and gone.output.count("\n") == 1
