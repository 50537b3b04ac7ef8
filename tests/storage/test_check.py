"""``medsearch check [--repair]`` finds each kind of damage, and repairs what can be repaired."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.storage import snapshot, vectors
from medsearch.storage.shrink import VACUUM_FILE
from medsearch.storage.store import Store

from tests.conftest import write_png


@pytest.fixture
def indexed(tmp_path: Path, tiny_model: Path, cli: Callable[..., Any]) -> tuple[Path, Path]:
    """(store, images): five PNGs indexed with the tiny model."""
    folder, store = tmp_path / "images", tmp_path / "store"
    for seed in range(5):
        write_png(folder / f"img{seed}.png", seed)
    cli("index", folder, "--store", store, "--model", tiny_model, "--workers", "0", "--json")
    return store, folder


def kinds(report: dict[str, Any]) -> set[str]:
    return {problem["kind"] for problem in report["problems"] if not problem["repaired"]}


def test_clean_store_passes(indexed: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    report = cli("check", "--store", indexed[0], "--json")
    assert report["ok"] and report["problems"] == []
    assert report["facts"]["images"] == 5 and report["facts"]["index_count"] == 5
    assert report["facts"]["snapshot_generation"] == report["facts"]["generation"]


@pytest.mark.parametrize("damage", ["flip", "delete_index", "delete_manifest", "truncate"])
def test_damaged_snapshot_is_found_and_rebuilt(indexed: tuple[Path, Path], cli: Callable[..., Any],
                                               damage: str) -> None:
    store = indexed[0]
    index_file = snapshot.snapshot_file(store)
    assert index_file is not None
    if damage == "flip":
        data = bytearray(index_file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        index_file.write_bytes(bytes(data))
    elif damage == "truncate":
        index_file.write_bytes(index_file.read_bytes()[:100])
    else:
        (index_file if damage == "delete_index" else store / snapshot.MANIFEST_FILE).unlink()
    assert kinds(cli("check", "--store", store, "--json", expect=5)) == {"snapshot"}
    repaired = cli("check", "--store", store, "--repair", "--json")
    assert repaired["ok"] and {p["kind"] for p in repaired["problems"]} == {"snapshot"}
    assert cli("check", "--store", store, "--json")["problems"] == []
    assert snapshot.load_snapshot(store, 32, repaired["facts"]["revision"]) is not None


def test_snapshot_with_wrong_ids_is_found(indexed: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    """A well-formed snapshot (checksum fine) holding an id the database never had."""
    store = indexed[0]
    with Store.open(store) as opened:
        index = opened.vectors.index()
        vectors.add(index, np.array([999], dtype=np.int64), np.eye(1, 32, dtype=np.float32))
        record = opened.model_record()
        assert record is not None
        snapshot.save_snapshot(index, store, opened.generation(), record.revision, "flat")
    report = cli("check", "--store", store, "--json", expect=5)
    assert "snapshot" in kinds(report)
    assert "1 ids only in the snapshot" in report["problems"][0]["message"]
    assert cli("check", "--store", store, "--repair", "--json")["ok"]
    assert cli("check", "--store", store, "--json")["ok"]


def test_missing_file_is_reported_not_repaired(indexed: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    store, folder = indexed
    (folder / "img3.png").unlink()
    report = cli("check", "--store", store, "--json", expect=5)
    assert kinds(report) == {"missing_file"} and "img3.png" in report["problems"][0]["message"]
    assert kinds(cli("check", "--store", store, "--repair", "--json", expect=5)) == {"missing_file"}


@pytest.mark.parametrize("blob", [b"\x00" * 10, np.zeros(32, np.float32).tobytes(),
                                  np.full(32, np.nan, np.float32).tobytes()])
def test_corrupt_vector_is_dropped_and_reindexed(indexed: tuple[Path, Path], cli: Callable[..., Any],
                                                 tiny_model: Path, blob: bytes) -> None:
    store, folder = indexed
    with sqlite3.connect(store / "medsearch.db") as connection:
        connection.execute("update image_vectors set embedding = ? where id = "
                           "(select id from images where path like '%img2.png')", (blob,))
    assert kinds(cli("check", "--store", store, "--json", expect=5)) == {"vector"}
    repaired = cli("check", "--store", store, "--repair", "--json")
    assert repaired["ok"]
    after = cli("check", "--store", store, "--json")
    assert after["ok"] and after["facts"]["images"] == 4 and after["facts"]["index_count"] == 4
    report = cli("index", folder, "--store", store, "--model", tiny_model, "--workers", "0", "--json")
    assert (report["added"], report["unchanged"]) == (1, 4)
    assert cli("check", "--store", store, "--json")["facts"]["index_count"] == 5


@pytest.mark.parametrize("left", [f"{snapshot.INDEX_FILE}.tmp12345", VACUUM_FILE])
def test_stale_temporary_file_is_removed(indexed: tuple[Path, Path], cli: Callable[..., Any], left: str) -> None:
    """A snapshot write's or a compaction's copy, left by a kill."""
    store = indexed[0]
    (store / left).write_bytes(b"partial")
    assert kinds(cli("check", "--store", store, "--json", expect=5)) == {"temporary_file"}
    assert cli("check", "--store", store, "--repair", "--json")["ok"]
    assert not list(store.glob("*.tmp*"))


def test_damaged_database_is_reported(indexed: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    """Pages overwritten with garbage: either the integrity check or opening the store says so, in one
    line, with the store-error exit code."""
    store = indexed[0]
    database = store / "medsearch.db"
    with sqlite3.connect(database) as connection:
        connection.execute("pragma wal_checkpoint(truncate)")
        page_size = connection.execute("pragma page_size").fetchone()[0]
    data = bytearray(database.read_bytes())
    for offset in range(page_size * 2 + 16, len(data), page_size):
        data[offset : offset + 64] = b"\xa5" * 64
    database.write_bytes(bytes(data))
    result = cli("check", "--store", store, expect=5)
    assert "damaged" in result.output or "integrity check failed" in result.output
    assert "Traceback" not in result.output


def test_check_of_missing_store_is_one_line(tmp_path: Path, cli: Callable[..., Any]) -> None:
    result = cli("check", "--store", tmp_path / "nothing", expect=5)
    assert "No medsearch store" in result.output


def test_store_of_a_run_stopped_before_its_first_batch_passes(tmp_path: Path, tiny_model: Path,
                                                              cli: Callable[..., Any]) -> None:
    """The model record is bound, no image was written, no snapshot was saved: nothing is wrong."""
    from medsearch.indexer.embedder import model_record
    from medsearch.indexer.model_loading import load_embedder

    store = tmp_path / "store"
    with Store.open(store, create=True, writable=True) as opened:
        opened.bind_model(model_record(load_embedder(str(tiny_model), device="cpu")))
    assert not list(store.glob("index*"))
    report = cli("check", "--store", store, "--json")
    assert report["ok"] and report["problems"] == [] and report["facts"]["images"] == 0
    assert cli("check", "--store", store).output.strip().endswith("ok")


def test_repair_is_suggested_only_for_what_it_can_fix(indexed: tuple[Path, Path], cli: Callable[..., Any]) -> None:
    store, folder = indexed
    (folder / "img3.png").unlink()
    manual = cli("check", "--store", store, expect=5).output
    assert "problems remain" in manual and "--repair" not in manual.splitlines()[-1]
    (store / snapshot.MANIFEST_FILE).unlink()
    assert cli("check", "--store", store, expect=5).output.splitlines()[-1] == "problems remain; try --repair"


def _committed(db: Path) -> int | None:
    """Images committed so far, or None while the store's tables and model record are not written yet."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            if connection.execute("select count(*) from store_info").fetchone()[0] == 0:
                return None
            return int(connection.execute("select count(*) from images").fetchone()[0])
    except sqlite3.OperationalError:
        return None


def _kill_after_batches(folder: Path, store: Path, model: Path, batches: int) -> int:
    """Start a first ``index`` (batches of 2, no snapshot before the end), SIGKILL it once ``batches``
    batches are committed; the images committed when it died."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDSEARCH_SNAPSHOT_EVERY_S": "3600"}
    args = [sys.executable, "-m", "medsearch.cli", "index", str(folder), "--store", str(store), "--model",
            str(model), "--batch-size", "2", "--workers", "0", "--json"]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db, deadline = store / "medsearch.db", time.monotonic() + 180
    try:
        while process.poll() is None and time.monotonic() < deadline:
            done = _committed(db)
            if done is not None and done >= 2 * batches:
                break
            time.sleep(0.002)
        assert process.poll() is None, "the index run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    committed = _committed(db)
    assert committed is not None
    return committed


def test_first_index_killed_before_its_first_snapshot_passes_with_a_note(tmp_path: Path, tiny_model: Path,
                                                                         cli: Callable[..., Any]) -> None:
    """Killed after 0, 1 or several committed batches and before any snapshot: the database is the truth,
    so ``check`` exits 0 with a note saying the next open rebuilds the index (issue 35)."""
    import random

    folder = tmp_path / "images"
    for seed in range(40):
        write_png(folder / f"img{seed:02d}.png", seed, size=(700, 500))
    for batches in (0, 1, random.Random().randint(2, 8)):
        store = tmp_path / f"store{batches}"
        committed = _kill_after_batches(folder, store, tiny_model, batches)
        assert committed >= 2 * batches and not list(store.glob("index*.faiss"))
        report = cli("check", "--store", store, "--json")
        assert report["ok"] and report["problems"] == [], report
        if committed:
            assert any("no FAISS snapshot yet" in note and f"{committed} images" in note for note in report["notes"])
        assert report["facts"]["index_count"] == committed
        text = cli("check", "--store", store).output
        assert text.strip().splitlines()[-1] == "ok"


def test_a_lost_snapshot_with_a_manifest_left_is_still_a_problem(indexed: tuple[Path, Path],
                                                                  cli: Callable[..., Any]) -> None:
    store = indexed[0]
    index_file = snapshot.snapshot_file(store)
    assert index_file is not None
    index_file.unlink()
    assert kinds(cli("check", "--store", store, "--json", expect=5)) == {"snapshot"}
