"""End to end through the CLI: index written images and real DICOMs, search, similar, incremental runs."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import write_png

Cli = Callable[..., Any]


def _index(cli: Cli, folder: Path, store: Path, model: Path | None = None) -> dict[str, Any]:
    args = ["index", folder, "--store", store, "--json", "--workers", "0"]
    if model is not None:
        args += ["--model", model]
    return cli(*args)


def test_index_search_similar_info(cli: Cli, image_folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    report = _index(cli, image_folder, store, tiny_model)
    assert (report["added"], report["failed"], report["updated"]) == (9, 1, 0)
    assert report["failures"][0]["path"].endswith("rtplan.dcm") and "pixel" in report["failures"][0]["reason"]
    assert set(report) >= {"added", "updated", "unchanged", "removed", "failed", "seconds"}

    found = cli("search", "left pleural effusion", "-k", "4", "--store", store, "--json")
    assert found["query"] == "left pleural effusion"
    assert [r["rank"] for r in found["results"]] == [1, 2, 3, 4]
    scores = [r["score"] for r in found["results"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 < r["probability"] < 1.0 for r in found["results"])

    target = image_folder / "dicom" / "CT_small.dcm"
    similar = cli("similar", target, "-k", "3", "--include-self", "--store", store, "--json")
    assert similar["results"][0]["path"] == str(target.resolve())
    assert abs(similar["results"][0]["score"] - 1.0) < 1e-4
    assert similar["results"][0]["metadata"]["modality"] == "CT"
    by_id = cli("similar", str(similar["results"][0]["id"]), "-k", "1", "--include-self", "--store", store, "--json")
    assert by_id["results"][0]["id"] == similar["results"][0]["id"]

    info = cli("info", "--store", store, "--json")
    assert info["images"] == 9 and info["dimension"] == 32 and info["index_type"] == "flat"
    assert info["model"] == str(tiny_model.resolve())
    assert [f["path"] for f in info["failures"]] == [str((image_folder / "dicom" / "rtplan.dcm").resolve())]


def test_similar_accepts_a_file_outside_the_store(cli: Cli, image_folder: Path, tiny_model: Path,
                                                  tmp_path: Path) -> None:
    store = tmp_path / "store"
    _index(cli, image_folder, store, tiny_model)
    outside = tmp_path / "outside.png"
    shutil.copy(image_folder / "png" / "case001.png", outside)
    found = cli("similar", outside, "-k", "1", "--store", store, "--json")
    assert found["results"][0]["path"].endswith("png/case001.png")
    assert found["results"][0]["score"] > 0.9999


def test_rerun_is_incremental(cli: Cli, image_folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _index(cli, image_folder, store, tiny_model)
    again = _index(cli, image_folder, store)
    assert (again["added"], again["updated"], again["removed"], again["unchanged"]) == (0, 0, 0, first["added"])
    assert again["failed"] == 1  # the RT plan is still known to fail, and is not read again
    assert again["failures"] == [{**first["failures"][0], "known": "yes"}]  # the count and the list agree
    ids_before = _ids(store)

    (image_folder / "png" / "case000.png").unlink()  # removed
    write_png(image_folder / "png" / "case001.png", seed=99)  # modified
    os.rename(image_folder / "scan.tiff", image_folder / "renamed.tiff")  # moved
    (image_folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # corrupt
    write_png(image_folder / "png" / "new.png", seed=7)  # new
    os.utime(image_folder / "photo.jpg", ns=(1, 1))  # touched, same bytes

    third = _index(cli, image_folder, store)
    assert (third["added"], third["updated"], third["removed"], third["moved"]) == (1, 1, 1, 1)
    assert third["failed"] == 2 and third["unchanged"] == first["added"] - 3
    assert len(third["failures"]) == 2 and sum("known" in f for f in third["failures"]) == 1
    ids_after = _ids(store)
    renamed = str((image_folder / "renamed.tiff").resolve())
    assert ids_after[renamed] == ids_before[str((image_folder / "scan.tiff").resolve())]  # kept its vector
    modified = str((image_folder / "png" / "case001.png").resolve())
    assert ids_after[modified] > max(ids_before.values())  # a new row, never a reused id
    info = cli("info", "--store", store, "--json")
    reasons = {Path(f["path"]).name: f["reason"] for f in info["failures"]}
    assert set(reasons) == {"rtplan.dcm", "broken.png"}
    assert info["images"] == len(ids_after) == 9


def test_store_refuses_another_model(cli: Cli, image_folder: Path, tiny_model: Path, trained_model: Path,
                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    _index(cli, image_folder, store, tiny_model)
    write_png(image_folder / "more.png", seed=5)
    refused = cli("index", image_folder, "--store", store, "--model", trained_model, "--json", expect=4)
    assert refused["error"]["code"] == "model_mismatch"
    assert "omit --model" in refused["error"]["message"]
    assert cli("info", "--store", store, "--json")["images"] == 9


def test_missing_store_and_folder_are_clear_errors(cli: Cli, tmp_path: Path) -> None:
    result = cli("search", "x", "--store", tmp_path / "none", expect=5)
    assert "No medsearch store" in result.output
    result = cli("index", tmp_path / "missing", "--store", tmp_path / "s", expect=6)
    assert "No such file or folder" in result.output


def _ids(store: Path) -> dict[str, int]:
    with sqlite3.connect(store / "medsearch.db") as db:
        return {path: image_id for image_id, path in db.execute("select id, path from images")}
