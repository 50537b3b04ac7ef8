"""What ``search``, ``similar`` and ``show`` print (issue 14): sidecar and saved-label fields in the table,
in ``--json`` and in ``show``; the group key and size; paths only; the query image left out of
``similar`` unless ``--include-self``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_png


@pytest.fixture(scope="module")
def fielded_store(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Any]:
    """Six PNGs indexed with the tiny model, a sidecar with text (site), integer (age) and float (weight)."""
    from medsearch.cli import app
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("fielded")
    for seed in range(6):
        write_png(root / "images" / f"img{seed}.png", seed)
    sidecar = root / "images" / "meta.csv"
    sidecar.write_text("file,site,age,weight\n" + "".join(
        f"img{seed}.png,{'north' if seed % 2 else 'south'},{40 + seed},{seed / 4}\n" for seed in range(6)))
    store = root / "store"
    done = CliRunner().invoke(app, ["index", str(root / "images"), "--store", str(store), "--model",
                                    str(tiny_model), "--workers", "0", "--metadata", str(sidecar)])
    assert done.exit_code == 0, done.output
    return {"store": store, "images": root / "images"}


def test_search_json_carries_typed_fields(cli: Any, fielded_store: dict[str, Any]) -> None:
    found = cli("search", "a scan", "-k", "6", "--store", fielded_store["store"], "--json")["results"]
    assert len(found) == 6
    for result in found:
        seed = int(Path(result["path"]).stem[3:])
        assert result["fields"] == {"site": "north" if seed % 2 else "south", "age": 40 + seed, "weight": seed / 4}


def test_table_shows_fields_compactly_and_as_chosen_columns(cli: Any, fielded_store: dict[str, Any]) -> None:
    store = fielded_store["store"]
    compact = cli("search", "a scan", "-k", "6", "--store", store).stdout
    assert "site=north" in compact and "site=south" in compact and "age=4" in compact
    chosen = cli("search", "a scan", "-k", "6", "--show-fields", "age,site", "--store", store).stdout
    header = next(line for line in chosen.splitlines() if "rank" in line)
    assert "age" in header and "site" in header and "site=" not in chosen
    assert all(str(age) in chosen for age in range(40, 46))


def test_group_by_table_shows_the_key_and_size(cli: Any, fielded_store: dict[str, Any]) -> None:
    out = cli("search", "a scan", "--group-by", "site", "--store", fielded_store["store"]).stdout
    header = next(line for line in out.splitlines() if "rank" in line)
    assert "group" in header and "size" in header
    rows = [line for line in out.splitlines() if " north " in line or " south " in line]
    assert len(rows) == 2 and all(" 3 " in row for row in rows), out


def test_paths_only(cli: Any, fielded_store: dict[str, Any]) -> None:
    out = cli("search", "a scan", "-k", "4", "--paths", "--store", fielded_store["store"]).stdout
    lines = out.splitlines()
    assert len(lines) == 4 and all(Path(line).is_file() for line in lines)


def test_similar_leaves_out_the_query_image(cli: Any, fielded_store: dict[str, Any]) -> None:
    store, image = fielded_store["store"], fielded_store["images"] / "img2.png"
    with_self = cli("similar", image, "-k", "3", "--include-self", "--store", store, "--json")["results"]
    without = cli("similar", image, "-k", "3", "--store", store, "--json")["results"]
    assert with_self[0]["path"] == str(image.resolve())
    assert str(image.resolve()) not in [r["path"] for r in without]
    assert [r["id"] for r in without] == [r["id"] for r in with_self[1:]] + [without[-1]["id"]]
    assert [r["rank"] for r in without] == [1, 2, 3]
    by_id = cli("similar", str(with_self[0]["id"]), "-k", "2", "--offset", "1", "--store", store, "--json")
    assert [r["id"] for r in by_id["results"]] == [r["id"] for r in without[1:3]]
    assert [r["rank"] for r in by_id["results"]] == [2, 3]


def test_show_prints_one_item_with_its_fields(cli: Any, fielded_store: dict[str, Any]) -> None:
    store = fielded_store["store"]
    first = cli("search", "a scan", "-k", "1", "--store", store, "--json")["results"][0]
    item = cli("show", str(first["id"]), "--store", store, "--json")
    assert item["path"] == first["path"] and item["fields"] == first["fields"]
    assert item["metadata"]["file_format"] == "png"
    text = cli("show", str(first["id"]), "--store", store).stdout
    assert f"path: {first['path']}" in text and f"age: {first['fields']['age']}" in text
    missing = cli("show", "999999", "--store", store, "--json", expect=6)
    assert missing["error"]["code"] == "not_found"


def test_table_escapes_rich_markup(cli: Any, fielded_store: dict[str, Any]) -> None:
    out = cli("search", "[bold]x[/bold]", "-k", "1", "--store", fielded_store["store"]).stdout
    assert "[bold]x[/bold]" in out
    assert json.loads(json.dumps(out))  # plain text, printable
