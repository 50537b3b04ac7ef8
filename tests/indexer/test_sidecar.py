"""Sidecar CSV metadata: joined by path, file name or SOP instance UID, typed, re-importable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from medsearch.indexer.sidecar import infer_kind

from tests.conftest import write_png


def _fields(store: Path) -> dict[tuple[str, str], tuple[str, Any]]:
    with sqlite3.connect(store / "medsearch.db") as db:
        rows = db.execute("select i.path, f.name, f.kind, f.number, f.text, f.date from image_fields f "
                          "join images i on i.id = f.image_id").fetchall()
    return {(Path(p).name, name): (kind, number if number is not None else text or date)
            for p, name, kind, number, text, date in rows}


def test_import_joins_types_and_reports(cli: Callable[..., Any], image_folder: Path, tiny_model: Path,
                                        tmp_path: Path) -> None:
    store = tmp_path / "store"
    labels = image_folder / "labels.csv"
    labels.write_text("path,effusion,site,scan_date,reviewed\n"
                      "png/case000.png,1,north,2021-03-04,yes\n"
                      "png/case001.png,0,south,2020-12-31,no\n"
                      "missing.png,1,east,2019-01-01,yes\n")
    report = cli("index", image_folder, "--store", store, "--model", tiny_model, "--metadata", labels, "--json",
                 "--workers", "0")
    meta = report["metadata"]
    assert (meta["rows"], meta["matched_rows"], meta["images_updated"]) == (3, 2, 2)
    assert meta["unmatched"] == ["missing.png"]
    assert meta["fields"] == {"effusion": "number", "site": "text", "scan_date": "date", "reviewed": "bool"}
    fields = _fields(store)
    assert fields[("case000.png", "effusion")] == ("number", 1.0)
    assert fields[("case001.png", "site")] == ("text", "south")
    assert fields[("case000.png", "scan_date")] == ("date", "2021-03-04")
    assert fields[("case001.png", "reviewed")] == ("bool", 0.0)

    labels.write_text("file,effusion\ncase000.png,0\n")  # by file name; re-import replaces
    again = cli("import-metadata", labels, "--store", store, "--json")
    assert again["matched_rows"] == 1
    fields = _fields(store)
    assert fields[("case000.png", "effusion")] == ("number", 0.0)
    assert ("case001.png", "site") not in fields  # the file's earlier values are gone with it

    write_png(image_folder / "png" / "case000.png", seed=123)  # changed: re-embedded, keeps its labels
    cli("index", image_folder, "--store", store, "--json", "--workers", "0")
    assert _fields(store)[("case000.png", "effusion")] == ("number", 0.0)


def test_join_by_sop_instance_uid(cli: Callable[..., Any], image_folder: Path, tiny_model: Path,
                                  tmp_path: Path) -> None:
    import pydicom

    store = tmp_path / "store"
    cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    uid = pydicom.dcmread(image_folder / "dicom" / "CT_small.dcm").SOPInstanceUID
    labels = tmp_path / "uids.csv"
    labels.write_text(f"sop_instance_uid,nodule\n{uid},true\n")
    assert cli("import-metadata", labels, "--store", store, "--json")["matched_rows"] == 1
    assert _fields(store)[("CT_small.dcm", "nodule")] == ("bool", 1.0)


def test_bad_sidecars_are_clear_errors(cli: Callable[..., Any], image_folder: Path, tiny_model: Path,
                                       tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    no_key = tmp_path / "nokey.csv"
    no_key.write_text("name,value\na,1\n")
    refused = cli("import-metadata", no_key, "--store", store, "--json", expect=2)["error"]["message"]
    assert "names an indexed image" in refused and "--key COLUMN" in refused
    clash = tmp_path / "clash.csv"
    clash.write_text("path,finding\na.png,CT\n")
    refused = cli("import-metadata", clash, "--rename", "finding=modality", "--clash-prefix", "", "--store", store,
                  "--json", expect=2)["error"]["message"]
    assert "clash with built-in metadata" in refused and "--rename finding=csv_modality" in refused


@pytest.mark.parametrize(("values", "kind"), [
    (["1", "0", ""], "number"), (["2.5", "-1e3"], "number"), (["yes", "No", "TRUE"], "bool"),
    (["2020-01-02", "20210304"], "date"), (["1", "x"], "text"), ([], "text"),
])
def test_kind_inference(values: list[str], kind: str) -> None:
    assert infer_kind(values) == kind


def test_a_csv_as_it_comes(cli: Callable[..., Any], image_folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    """The dataset's own CSV: a key column of another name, a column named like a built-in one, an empty
    column, and a file name found in two indexed folders."""
    write_png(image_folder / "other" / "case000.png", seed=77)  # same name as png/case000.png
    store = tmp_path / "store"
    cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    sheet = image_folder / "metadata.csv"
    sheet.write_text("imagename,modality,finding,notes\ncase000.png,XR,a,\ncase001.png,XR,b,\n")
    report = cli("import-metadata", sheet, "--store", store, "--json")  # key found, modality prefixed
    assert (report["key"], report["key_found"], report["renamed"]) == ("imagename", True, {"modality": "csv_modality"})
    assert report["fields"] == {"csv_modality": "text", "finding": "text"} and report["empty"] == ["notes"]
    assert (report["matched_rows"], report["images_updated"]) == (1, 1)
    assert sorted(Path(p).parent.name for p in report["ambiguous"]["case000.png"]) == ["other", "png"]
    fields = _fields(store)
    assert fields[("case001.png", "csv_modality")] == ("text", "XR") and ("case000.png", "finding") not in fields
    assert all(any(name == field for _path, name in fields) for field in report["fields"])  # each can be filtered

    rooted = cli("import-metadata", sheet, "--key", "imagename", "--rename", "modality=source_modality", "--root",
                 image_folder / "png", "--store", store, "--json")
    assert rooted["ambiguous"] == {} and rooted["matched_rows"] == 2
    assert _fields(store)[("case000.png", "source_modality")] == ("text", "XR")
    sheet.write_text("imagename,modality,finding\nother/case000.png,MR,c\n")  # a path relative to the CSV
    by_path = cli("import-metadata", sheet, "--key", "imagename", "--skip", "modality", "--store", store, "--json")
    assert by_path["matched_rows"] == 1 and by_path["fields"] == {"finding": "text"}
    other = next(p for p in _paths(store) if Path(p).parent.name == "other")
    assert _field_of(store, other, "finding") == "c"


def test_rows_that_match_nothing_say_why(cli: Callable[..., Any], image_folder: Path, tiny_model: Path,
                                         tmp_path: Path) -> None:
    store = tmp_path / "store"
    cli("index", image_folder, "--store", store, "--model", tiny_model, "--json", "--workers", "0")
    elsewhere = tmp_path / "elsewhere" / "labels.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text("path,effusion\npng/case000.png,1\n")  # relative to the wrong folder
    report = cli("import-metadata", elsewhere, "--store", store, "--json")
    assert report["matched_rows"] == 0 and "relative to the CSV's folder" in report["hint"]
    text = cli("import-metadata", elsewhere, "--store", store)
    assert "relative to the CSV's folder" in text.stderr and str(elsewhere.parent) in text.stderr
    fixed = cli("import-metadata", elsewhere, "--root", image_folder, "--store", store, "--json")
    assert fixed["matched_rows"] == 1 and fixed["hint"] is None
    assert "--rename takes OLD=NEW" in cli("import-metadata", elsewhere, "--rename", "effusion", "--store", store,
                                           "--json", expect=2)["error"]["message"]


def _paths(store: Path) -> list[str]:
    with sqlite3.connect(store / "medsearch.db") as db:
        return [row[0] for row in db.execute("select path from images")]


def _field_of(store: Path, path: str, name: str) -> Any:
    with sqlite3.connect(store / "medsearch.db") as db:
        return db.execute("select f.text from image_fields f join images i on i.id = f.image_id "
                          "where i.path = ? and f.name = ?", (path, name)).fetchone()[0]
