"""Faults: a full disk, a read-only store, a vanished input folder, a store locked by another writer.
Each gives a clear one-line error and a non-zero exit code, and leaves the store unchanged and usable."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from medsearch.storage.store import Store

from tests.components import missing
from tests.conftest import write_png

Cli = Callable[..., Any]


@pytest.fixture
def indexed(tmp_path: Path, tiny_model: Path, cli: Cli) -> tuple[Path, Path]:
    """(store, images): six PNGs indexed with the tiny model."""
    return _index_into(tmp_path / "store", tmp_path / "images", tiny_model, cli)


def _index_into(store: Path, folder: Path, model: Path, cli: Cli) -> tuple[Path, Path]:
    for seed in range(6):
        write_png(folder / f"img{seed}.png", seed)
    cli("index", folder, "--store", store, "--model", model, "--workers", "0", "--json")
    return store, folder


def _assert_usable(store: Path, cli: Cli, images: int) -> None:
    """The store passes check, holds ``images`` images, and answers a search with all of them."""
    report = cli("check", "--store", store, "--json")
    assert report["ok"], report
    assert report["facts"]["images"] == images == report["facts"]["index_count"]
    results = cli("search", "a chest x-ray", "--store", store, "--json")["results"]
    assert len(results) == min(10, images)


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        missing("mounting a tmpfs", f"root: {done.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs (needs root; skipped otherwise, failed under CI): an empty store is 1.6 MB of 32 KB
    pages."""
    if shutil.which("mount") is None:
        missing("the mount command", "util-linux")
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mountpoint))
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_disk_full(small_disk: Path, tmp_path: Path, tiny_model: Path, cli: Cli) -> None:
    store, folder = _index_into(small_disk / "store", tmp_path / "images", tiny_model, cli)
    for seed in range(6, 40):
        write_png(folder / f"img{seed}.png", seed)
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as handle:  # fill the disk to the last block
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass
    result = cli("index", folder, "--store", store, "--model", tiny_model, "--workers", "0", expect=5)
    # SQLite reports a full disk under its WAL as "disk I/O error"; FAISS and Python as ENOSPC.
    assert "disk is full" in result.output or "disk I/O error" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    filler.unlink()
    with Store.open(store) as opened:
        committed = opened.vectors.index().ntotal
    assert committed >= 6
    _assert_usable(store, cli, committed)
    report = cli("index", folder, "--store", store, "--model", tiny_model, "--workers", "0", "--json")
    assert report["added"] == 40 - committed
    _assert_usable(store, cli, 40)


def test_read_only_store(indexed: tuple[Path, Path], tmp_path: Path, tiny_model: Path, cli: Cli) -> None:
    store, folder = indexed
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    _mount("--bind", str(store), str(read_only))
    try:
        _mount("-o", "remount,bind,ro", str(read_only))
        write_png(folder / "new.png", 99)
        result = cli("index", folder, "--store", read_only, "--model", tiny_model, "--workers", "0", expect=5)
        assert "read-only" in result.output or "Cannot lock" in result.output
        assert len(result.output.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(read_only)], check=False)
    _assert_usable(store, cli, 6)


def test_vanished_input_folder(indexed: tuple[Path, Path], tiny_model: Path, cli: Cli) -> None:
    store, folder = indexed
    shutil.rmtree(folder)
    result = cli("index", folder, "--store", store, "--model", tiny_model, expect=6)
    assert str(folder) in result.output and len(result.output.strip().splitlines()) == 1
    assert cli("info", "--store", store, "--json")["images"] == 6
    results = cli("search", "x", "--store", store, "--json")["results"]
    assert len(results) == 6


def test_locked_by_another_writer(indexed: tuple[Path, Path], tiny_model: Path, cli: Cli) -> None:
    store, folder = indexed
    write_png(folder / "new.png", 99)
    with Store.open(store, writable=True):
        result = cli("index", folder, "--store", store, "--model", tiny_model, "--json", expect=5)
        assert result["error"]["code"] == "store_locked" and "wait for it" in result["error"]["message"]
        assert cli("check", "--store", store, "--repair", "--json", expect=5)["error"]["code"] == "store_locked"
        _assert_usable(store, cli, 6)  # readers are not blocked by the writer's lock
    assert cli("index", folder, "--store", store, "--model", tiny_model, "--json")["added"] == 1
