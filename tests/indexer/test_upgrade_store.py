"""A store made with the previous preprocessing (version 2 schema and vectors) upgrades in place: it
opens (the new columns are added), ``index`` points to ``upgrade``, and ``upgrade`` re-embeds it. Killed
with SIGKILL half way (held deterministically: a file in the middle is a FIFO nobody writes to, so the
run blocks there after committing the files before it), the store is consistent (``medsearch check``);
run again, it finishes, and every vector equals a fresh index of the same files."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from medsearch.indexer.preprocess import PREPROCESSING_VERSION
from medsearch.storage import vector_codec
from pydicom.data import get_testdata_files

from tests.conftest import write_png

Cli = Callable[..., Any]
ROOT = Path(__file__).resolve().parents[2]
OLD_VERSION = "pad-square-bicubic-f32/2"
FILES = ("6154", "2062", "2392", "2693", "3023", "3353", "6924", "CT_small.dcm")


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    by_name = {Path(p).name: Path(p) for p in get_testdata_files()}
    for number, name in enumerate(FILES):
        shutil.copy(by_name[name], folder / f"f{number:02d}.dcm")
    write_png(folder / "f99.png", 4)
    return folder


def _make_old(db: Path) -> None:
    """Turn a store into one made by the previous version: no per-image columns, version 2 recorded."""
    with sqlite3.connect(db) as connection:
        for column in ("voi", "read_options", "preprocessing_version"):
            connection.execute(f"alter table images drop column {column}")
        connection.execute("update store_info set preprocessing_version = ?", (OLD_VERSION,))


def _versions(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db, timeout=10) as connection:
        return dict(connection.execute("select path, preprocessing_version from images"))


def _vectors(db: Path) -> dict[str, np.ndarray]:
    with sqlite3.connect(db, timeout=10) as connection:
        return {Path(p).name: vector_codec.decode(blob)
                for p, blob in connection.execute(
                    "select path, v.embedding from images join image_vectors v using (id)")}


def test_an_old_store_upgrades_in_place_through_a_kill(cli: Cli, tmp_path: Path, tiny_model: Path) -> None:
    folder, store = _folder(tmp_path), tmp_path / "store"
    db = store / "medsearch.db"
    base = ("--store", store, "--model", tiny_model, "--json", "--workers", "0")
    cli("index", folder, *base, "--voi", "robust")  # version 2's pixels: no stretch after the window
    old = _vectors(db)
    _make_old(db)

    refused = cli("index", folder, *base, expect=4)  # opens (columns added), but will not mix versions
    assert "medsearch upgrade" in refused["error"]["message"]
    assert set(_versions(db).values()) == {None}

    held = folder / "f04.dcm"  # sorted in the middle: f00-f03 are upgraded before the run blocks here
    content = held.read_bytes()
    held.unlink()
    os.mkfifo(held)
    args = [sys.executable, "-m", "medsearch.cli", "upgrade", *map(str, base), "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    run = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while sum(v == PREPROCESSING_VERSION for v in _versions(db).values()) < 4 and run.poll() is None:
            time.sleep(0.05)
        assert run.poll() is None, "the upgrade ended instead of blocking on the FIFO"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    versions = _versions(db)
    assert len(versions) == len(FILES) + 1  # no image lost or doubled
    assert sorted(Path(p).name for p, v in versions.items() if v == PREPROCESSING_VERSION) == [
        "f00.dcm", "f01.dcm", "f02.dcm", "f03.dcm"]
    assert cli("check", "--store", store, "--json")["ok"]
    assert cli("info", "--store", store, "--json")["images_to_upgrade"] == 5

    held.unlink()
    held.write_bytes(content)
    finished = cli("upgrade", *base)
    assert (finished["from_version"], finished["to_version"]) == (PREPROCESSING_VERSION, PREPROCESSING_VERSION)
    assert (finished["reembedded"], finished["failed"], finished["missing"], finished["left"]) == (5, 0, 0, 0)
    assert set(_versions(db).values()) == {PREPROCESSING_VERSION}
    assert cli("check", "--store", store, "--json")["ok"]
    info = cli("info", "--store", store, "--json")
    assert (info["preprocessing_version"], info["images_to_upgrade"]) == (PREPROCESSING_VERSION, 0)
    assert cli("index", folder, *base)["unchanged"] == len(FILES) + 1

    fresh = tmp_path / "fresh"
    cli("index", folder, "--store", fresh, "--model", tiny_model, "--json", "--workers", "0")
    upgraded, expected = _vectors(db), _vectors(fresh / "medsearch.db")
    for name, vector in expected.items():
        np.testing.assert_allclose(upgraded[name], vector, atol=1e-5, err_msg=name)
    assert not np.allclose(old["f00.dcm"], upgraded["f00.dcm"], atol=1e-3)  # the CR did change


def test_upgrade_keeps_missing_files_and_refuses_an_empty_store(cli: Cli, tmp_path: Path,
                                                                tiny_model: Path) -> None:
    folder, store = _folder(tmp_path), tmp_path / "store"
    base = ("--store", store, "--model", tiny_model, "--json", "--workers", "0")
    cli("index", folder, *base)
    _make_old(store / "medsearch.db")
    (folder / "f01.dcm").unlink()
    report = cli("upgrade", *base)
    assert (report["reembedded"], report["missing"], report["left"]) == (len(FILES), 1, 1)
    assert len(_versions(store / "medsearch.db")) == len(FILES) + 1  # the missing file keeps its row
    empty = cli("upgrade", "--store", tmp_path / "nothing", "--json", expect=5)
    assert "medsearch index" in empty["error"]["message"] or "No medsearch store" in empty["error"]["message"]
