"""``medsearch remove-root DIR``: an indexed folder's images leave the database and the FAISS index
together (a fresh open, a check and the search agree), its failure records and root go too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import write_png


def _two_folders(cli: Any, tmp_path: Path, tiny_model: Path) -> tuple[Path, Path, Path]:
    first, second, store = tmp_path / "first", tmp_path / "second", tmp_path / "store"
    for seed in range(4):
        write_png(first / "sub" / f"a{seed}.png", seed)
    for seed in range(3):
        write_png(second / f"b{seed}.png", 10 + seed)
    (first / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    (tmp_path / "first-sibling").mkdir()  # a name that starts like the root, never indexed
    write_png(tmp_path / "first-sibling" / "c.png", 20)
    cli("index", first, second, tmp_path / "first-sibling", "--store", store, "--model", tiny_model,
        "--workers", "0", "--json")
    return first, second, store


def test_remove_root_takes_out_rows_vectors_failures_and_root(cli: Any, tmp_path: Path, tiny_model: Path) -> None:
    first, second, store = _two_folders(cli, tmp_path, tiny_model)
    before = cli("info", "--store", store, "--json")
    assert before["images"] == 8 and len(before["failures"]) == 1
    done = cli("remove-root", first, "--store", store, "--json")
    assert done == {"roots": [str(first.resolve())], "files": 4, "images": 4, "failures": 1}
    after = cli("info", "--store", store, "--json")
    assert after["images"] == 4 and after["failures"] == [] and str(first.resolve()) not in after["roots"]
    found = cli("search", "a scan", "-k", "50", "--store", store, "--json")["results"]
    assert len(found) == 4 and not any(r["path"].startswith(str(first.resolve()) + "/") for r in found)
    assert cli("search", "--count", "--store", store, "--json")["count"] == 4  # the FAISS count, re-opened
    assert cli("check", "--store", store, "--json")["ok"] is True
    again = cli("index", second, "--store", store, "--json")
    assert (again["added"], again["unchanged"]) == (0, 3)
    missing = cli("remove-root", first, "--store", store, "--json", expect=2)
    assert "not an indexed folder" in missing["error"]["message"]


def test_a_folder_inside_a_root_is_refused(cli: Any, tmp_path: Path, tiny_model: Path) -> None:
    first, _second, store = _two_folders(cli, tmp_path, tiny_model)
    cli("index", first / "sub", "--store", store, "--json")
    refused = cli("remove-root", first / "sub", "--store", store, "--json", expect=2)
    assert f"inside the indexed folder {first.resolve()}" in refused["error"]["message"]
    assert cli("info", "--store", store, "--json")["images"] == 8
    done = cli("remove-root", first, "--store", store, "--json")
    assert done["roots"] == sorted([str(first.resolve()), str((first / "sub").resolve())]) and done["images"] == 4
