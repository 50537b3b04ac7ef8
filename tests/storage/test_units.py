"""Series and study vectors kept with the images: adding and removing slices updates them in the same
write, a reader's held unit index catches up by generation, a store without them is found by `check`
and built by `check --repair`, and a SIGKILL during indexing leaves them consistent."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from medsearch.api import Medsearch
from medsearch.errors import StoreError
from medsearch.indexer.pipeline import IndexSettings
from medsearch.storage import units, vector_codec, vectors
from medsearch.storage.check import check_store
from medsearch.storage.store import Store
from medsearch.storage.unit_models import Unit
from sqlalchemy import delete

from tests.volumes import write_slice, write_volume_set

SETTINGS = IndexSettings(batch_size=4, workers=0)


def unit_row(store: Store, kind: str, uid: str) -> Unit | None:
    from sqlalchemy import select

    with store.read_session() as session:
        return session.scalar(select(Unit).where(Unit.kind == kind, Unit.uid == uid))


def vector_of(row: Unit | None) -> np.ndarray:
    assert row is not None and row.embedding is not None
    return vector_codec.decode(row.embedding)


def expected_mean(store: Store, uid: str) -> np.ndarray:
    rows = units.members(store, "series", [uid])[uid]
    return units.mean_vector([v.tobytes() for _i, v in rows])


@pytest.fixture
def small(tmp_path: Path, tiny_embedder: Any) -> dict[str, Any]:
    specs = write_volume_set(tmp_path / "dicom", per_class=1, blanks=0, slices=6, marked=2)
    with Medsearch.open(tmp_path / "store", create=True, writable=True, embedder=tiny_embedder) as ms:
        ms.index([tmp_path / "dicom"], SETTINGS)
    return {"store": tmp_path / "store", "specs": specs, "folder": tmp_path / "dicom", "embedder": tiny_embedder}


def test_adding_and_removing_slices_updates_the_series_vector(small: dict[str, Any]) -> None:
    spec = small["specs"][0]
    with Store.open(small["store"]) as reader:  # a reader holding the unit index from before the change
        held = reader.unit_vectors.index("series")
        before = vector_of(unit_row(reader, "series", spec.series_uid)).copy()
        rng = np.random.default_rng(5)
        from tests.tiny_siglip import draw_class_image

        for number in (7, 8):
            spec.paths.append(write_slice(spec.paths[0].parent / f"{number:03d}.dcm",
                                          draw_class_image("green_stripes", rng), spec, number))
        with Medsearch.open(small["store"], writable=True, embedder=small["embedder"]) as ms:
            ms.index([small["folder"]], SETTINGS)
        grown = unit_row(reader, "series", spec.series_uid)
        assert grown is not None and grown.size == 8
        after = vector_of(grown)
        assert not np.allclose(before, after, atol=1e-4)
        assert np.allclose(after, expected_mean(reader, spec.series_uid), atol=1e-6)
        study = unit_row(reader, "study", spec.study_uid)
        others = sum(6 for s in small["specs"][1:] if s.study_uid == spec.study_uid)
        assert study is not None and study.size == 8 + others
        index = reader.unit_vectors.index("series")  # caught up by replay
        assert index is held and vectors.live_count(index) == len(small["specs"])
        scores, ids = reader.unit_vectors.search("series", after, 1)
        assert int(ids[0][0]) == grown.id and scores[0][0] == pytest.approx(1.0, abs=1e-5)

        for path in spec.paths[:7]:
            path.unlink()
        with Medsearch.open(small["store"], writable=True, embedder=small["embedder"]) as ms:
            ms.index([small["folder"]], SETTINGS)
        shrunk = unit_row(reader, "series", spec.series_uid)
        assert shrunk is not None and shrunk.size == 1
        assert np.allclose(vector_of(shrunk), expected_mean(reader, spec.series_uid))

        spec.paths[7].unlink()
        with Medsearch.open(small["store"], writable=True, embedder=small["embedder"]) as ms:
            ms.index([small["folder"]], SETTINGS)
        gone = unit_row(reader, "series", spec.series_uid)
        assert gone is not None and gone.size == 0 and gone.embedding is None  # a tombstone
        index = reader.unit_vectors.index("series")
        assert vectors.live_count(index) == len(small["specs"]) - 1 and gone.id not in set(vectors.ids(index))
        assert check_store(reader).ok


def test_a_store_without_unit_vectors_is_found_by_check_and_built_by_repair(small: dict[str, Any]) -> None:
    with Store.open(small["store"], writable=True) as store:
        with store.write_session() as session:
            session.execute(delete(Unit))
        with pytest.raises(StoreError, match="check --repair"):
            store.unit_vectors.index("series")
        report = check_store(store)
        assert not report.ok and {p.kind for p in report.problems} == {"units"}
        check_store(store, repair=True)
        assert check_store(store).ok
        assert store.unit_vectors.count("series") == len(small["specs"])


def _images(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return int(connection.execute("select count(*) from images").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_a_sigkill_while_indexing_leaves_the_unit_vectors_consistent(tmp_path: Path, tiny_model: Path) -> None:
    specs = write_volume_set(tmp_path / "dicom", per_class=2, blanks=0, slices=12, marked=2)
    total = sum(len(s.paths) for s in specs)
    store_dir = tmp_path / "store"
    command = [sys.executable, "-m", "medsearch.cli", "index", str(tmp_path / "dicom"), "--store", str(store_dir),
               "--model", str(tiny_model), "--batch-size", "2", "--workers", "0"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MEDSEARCH_SNAPSHOT_EVERY_S": "0"}
    process = subprocess.Popen(command, cwd=Path(__file__).parents[2], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _images(store_dir / "medsearch.db") < 9 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)  # waiting for a condition: 9 images committed (a series half written)
    process.send_signal(signal.SIGKILL)
    process.wait()
    committed = _images(store_dir / "medsearch.db")
    assert 9 <= committed < total, committed
    with Store.open(store_dir, writable=True) as store:
        assert units.stale_units(store) == []
        report = check_store(store)  # a kill inside a snapshot write may leave its temporary file: repairable
        assert all(p.repairable for p in report.problems) and "units" not in {p.kind for p in report.problems}
        check_store(store, repair=True)
        assert check_store(store).ok
        index = store.unit_vectors.index("series")
        with store.read_session() as session:
            from sqlalchemy import func, select

            live = session.scalar(select(func.count()).select_from(Unit).where(Unit.kind == "series", Unit.size > 0))
            sizes = session.scalar(select(func.sum(Unit.size)).where(Unit.kind == "series"))
        assert vectors.live_count(index) == live and sizes == committed
    finished = subprocess.run(command, cwd=Path(__file__).parents[2], env=env, capture_output=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    with Store.open(store_dir) as store:
        assert units.stale_units(store) == [] and check_store(store).ok
        assert store.unit_vectors.count("series") == len(specs)
    shutil.rmtree(store_dir)


def test_a_multi_frame_file_indexed_with_all_frames_is_a_series(tmp_path: Path, tiny_embedder: Any) -> None:
    from medsearch.indexer.frames import ReadOptions

    from tests.conftest import pydicom_file

    source = pydicom_file("examples_ybr_color.dcm")  # US, 30 frames (JPEG baseline, YBR)
    (tmp_path / "mr").mkdir()
    shutil.copy(source, tmp_path / "mr" / "us.dcm")
    settings = IndexSettings(batch_size=4, workers=0, read_options=ReadOptions(frames="all"))
    with Medsearch.open(tmp_path / "store", create=True, writable=True, embedder=tiny_embedder) as ms:
        ms.index([tmp_path / "mr"], settings)
        uid = ms.item(1)["metadata"]["series_instance_uid"]
        row = unit_row(ms.store, "series", uid)
        assert row is not None and row.size == 30
        assert np.allclose(vector_of(row), expected_mean(ms.store, uid))
        found = ms.search("a red circle", unit="series", k=5)
        assert [r.key for r in found] == [uid] and len(found[0].ids) == 30
